using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Migration.Compression;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>How a migration ended, with the figures users ask for.</summary>
public sealed record MigrationResult
{
    public required bool Succeeded { get; init; }

    /// <summary>Why it failed (null on success). The source guest runs: kept running, or resumed.</summary>
    public string? Failure { get; init; }

    /// <summary>The phase the sender was in when it failed (null on success).</summary>
    public SenderPhase? FailedPhase { get; init; }

    public bool Verified { get; init; }

    /// <summary>Launch requested → destination confirmed it runs.</summary>
    public double LaunchToResumeMs { get; init; }

    /// <summary>Source vCPUs paused → destination confirmed it runs.</summary>
    public double DowntimeMs { get; init; }

    /// <summary>Bytes sent before launch (wire bytes, headers included).</summary>
    public long SyncBytes { get; init; }

    /// <summary>
    /// Bytes sent before launch until every page had reached the receiver once (the initial full copy); null when
    /// launch came first. <c>SyncBytes − InitialCopyBytes</c> is the steady-state sync traffic the predictor saves on.
    /// </summary>
    public long? InitialCopyBytes { get; init; }

    /// <summary>
    /// Milliseconds from the start of sync until the receiver acknowledged the round that completed the first pass over all
    /// memory (<see cref="InitialCopyBytes"/> over this is the initial copy's rate); null when launch came first.
    /// </summary>
    public double? InitialCopyMs { get; init; }

    /// <summary>TCP connections that carried pages (protocol 1.3 MultiStream; 1 = the main connection only).</summary>
    public int Streams { get; init; } = 1;

    /// <summary>Bytes sent from launch to the end (final rounds, final delta, state).</summary>
    public long LaunchBytes { get; init; }

    /// <summary>Final live rounds after launch.</summary>
    public int FinalLiveRounds { get; init; }

    /// <summary>Pages sent with the guest paused.</summary>
    public long FinalDeltaPages { get; init; }

    /// <summary>The convergence policy's last decision after launch (why the guest was paused, or why the sender gave up).</summary>
    public ConvergenceDecision? Convergence { get; init; }

    /// <summary>Guest work units per second from connect to launch (the application-slowdown figure).</summary>
    public double ProgressRateDuringSync { get; init; }

    /// <summary>
    /// Guest work units per second over the first <see cref="PresyncSender.ProgressSampleWindow"/> after connect (null when
    /// launch came sooner). Seeded guests follow the same schedule, so runs compare like for like over this window.
    /// </summary>
    public double? ProgressRateFirstSeconds { get; init; }

    /// <summary>The guest's work and vCPU figures over the sync period (connect to launch); null when the sync phase did not end.</summary>
    public GuestWindow? PresyncWindow { get; init; }

    /// <summary>
    /// Guest slowdown during presync: <see cref="PresyncWindow"/> against the baseline measured just before presync
    /// (<see cref="PresyncOptions.Baseline"/>); null without a baseline.
    /// </summary>
    public GuestSlowdown? GuestSlowdown { get; init; }

    /// <summary>MSG_ZEROCOPY accounting when the zero-copy transport was used (loopback reports every send as copied).</summary>
    public ZeroCopyStats? ZeroCopy { get; init; }

    /// <summary>The readiness estimate published last before launch against the actual switchover (null when launch came before the first estimate, or on failure).</summary>
    public ReadinessCheck? ReadinessAtLaunch { get; init; }

    /// <summary>What payload compression did (bytes before/after, codec use); null when the run ended before sync.</summary>
    public CompressionStats? Compression { get; init; }

    /// <summary>Where the downtime went (null when the migration failed).</summary>
    public DowntimeBreakdown? Downtime { get; init; }

    /// <summary>Where the launch-to-resume went before the pause (null when the migration failed).</summary>
    public LaunchBreakdown? Launch { get; init; }

    public IReadOnlyList<RoundRecord> Rounds { get; init; } = [];

    /// <summary>The resumable session's id (hex) when the receiver accepted resumable sessions; null otherwise.</summary>
    public string? SessionId { get; init; }

    /// <summary>Reconnections during sync (<see cref="PresyncOptions.Reconnect"/>), in order.</summary>
    public IReadOnlyList<ReconnectRecord> Reconnects { get; init; } = [];

    /// <summary>Sum of the reconnections' outages, ms.</summary>
    public double OutageMs => Reconnects.Sum(r => r.OutageMs);

    /// <summary>Sum of the bytes sent after each reconnection until the pages it marked were sent again.</summary>
    public long BytesResent => Reconnects.Sum(r => r.BytesResent ?? 0);
}
