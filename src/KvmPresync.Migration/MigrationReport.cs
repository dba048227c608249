using KvmPresync.Core;
using KvmPresync.Engine;
namespace KvmPresync.Migration;

/// <summary>One sync round as the sender saw it (streamed to the live view and to JSON).</summary>
public sealed record SyncRoundReport
{
    public required long Round { get; init; }
    public required double TimeMs { get; init; }
    public required string Phase { get; init; }
    public required long DirtyPages { get; init; }
    public required long PendingPages { get; init; }
    public required long SentPages { get; init; }
    public required long SentBytes { get; init; }
    public required long SkippedUnchangedPages { get; init; }
    public required long ZeroPages { get; init; }
    public required long HeldPages { get; init; }
    public required long WindowBytes { get; init; }
    public required double IntervalMs { get; init; }
    public double? RttMs { get; init; }
    public double? GoodputMbps { get; init; }
    public double? ProgressRate { get; init; }
    public string? WindowReason { get; init; }
}

/// <summary>How a migration ended, with the figures users ask for.</summary>
public sealed record MigrationResult
{
    public required bool Succeeded { get; init; }
    /// <summary>Why it failed (null on success). The source guest was resumed.</summary>
    public string? Failure { get; init; }
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
    /// <summary>Bytes sent from launch to the end (final rounds, final delta, state).</summary>
    public long LaunchBytes { get; init; }
    public long FinalDeltaPages { get; init; }
    /// <summary>Guest work units per second from connect to launch (the application-slowdown figure).</summary>
    public double ProgressRateDuringSync { get; init; }
    /// <summary>
    /// Guest work units per second over the first <see cref="PresyncSender.ProgressSampleWindow"/> after connect (null when
    /// launch came sooner). Seeded guests follow the same schedule, so runs compare like for like over this window.
    /// </summary>
    public double? ProgressRateFirstSeconds { get; init; }
    /// <summary>MSG_ZEROCOPY accounting when the zero-copy transport was used (loopback reports every send as copied).</summary>
    public Wire.ZeroCopyStats? ZeroCopy { get; init; }
    /// <summary>Where the downtime went (null when the migration failed).</summary>
    public DowntimeBreakdown? Downtime { get; init; }
    public IReadOnlyList<SyncRoundReport> Rounds { get; init; } = [];
}

/// <summary>The downtime split into its steps, in milliseconds.</summary>
/// <param name="FinalDeltaMs">Pause → the last harvest's pages (and held-back pages) handed to the transport.</param>
/// <param name="DigestMs">Hashing all of the paused source's memory for the verification digest.</param>
/// <param name="StateMs">Saving vCPU/device state and sending FinalState.</param>
/// <param name="DestinationMs">FinalState sent → "resumed" received (transfer, verify, restore, start).</param>
public sealed record DowntimeBreakdown(double FinalDeltaMs, double DigestMs, double StateMs, double DestinationMs);
