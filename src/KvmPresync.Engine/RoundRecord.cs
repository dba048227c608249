using KvmPresync.Engine.Convergence;

namespace KvmPresync.Engine;

/// <summary>
/// One round of a migration, live or simulated — the one record both produce, streamed to the live view, the
/// API's progress event and JSON for plots: what was dirtied, pending, sent and held, the window and interval, the
/// network and guest signals, and after launch the convergence decision. Plain numbers (milliseconds as double).
/// </summary>
public sealed record RoundRecord
{
    public required long Round { get; init; }

    public required RoundPhase Phase { get; init; }

    /// <summary>Time of the round's harvest since the start of sync, ms.</summary>
    public required double TimeMs { get; init; }

    /// <summary>Pages newly reported dirty by this round's harvest.</summary>
    public required long DirtyPages { get; init; }

    /// <summary>Pages pending before this round's send (including held-back pages).</summary>
    public required long PendingPages { get; init; }

    public required long SentPages { get; init; }

    /// <summary>Wire bytes sent this round (headers included).</summary>
    public required long SentBytes { get; init; }

    /// <summary>Pages planned but not sent because the receiver already holds that content (live sender only).</summary>
    public long SkippedUnchangedPages { get; init; }

    /// <summary>Pages sent as a zero flag without payload (live sender only).</summary>
    public long ZeroPages { get; init; }

    public required long HeldPages { get; init; }

    public required long HeldBytes { get; init; }

    /// <summary>Pending pages neither sent nor held: left over because the window was full.</summary>
    public required long DeferredPages { get; init; }

    /// <summary>Bytes this round was allowed to send.</summary>
    public required long WindowBytes { get; init; }

    /// <summary>Round length, ms (0 after launch: final rounds follow each other at once).</summary>
    public required double IntervalMs { get; init; }

    /// <summary>Wire bytes still pending after this round's send: what launch would have to move now.</summary>
    public required long RemainingAtLaunchBytes { get; init; }

    /// <summary>Predictor's active pages (dirtied within its history) after this round's update; 0 without a predictor.</summary>
    public long ActivePages { get; init; }

    /// <summary>The period of the guest's bursts of writes as the sender's burst clock has it, ms (null: not timed, or not periodic).</summary>
    public double? BurstPeriodMs { get; init; }

    /// <summary>From this round's harvest to the start of the next burst the clock predicts, ms (null with <see cref="BurstPeriodMs"/>).</summary>
    public double? NextBurstInMs { get; init; }

    /// <summary>
    /// How long one of the guest's bursts lasts as the clock has it, ms (null with <see cref="BurstPeriodMs"/>): against the
    /// period, the share of the time the guest writes, and so how likely a pause is to fall within a burst.
    /// </summary>
    public double? BurstLengthMs { get; init; }

    /// <summary>The distinct pages one burst writes as the clock has it (null with <see cref="BurstPeriodMs"/>).</summary>
    public long? BurstPages { get; init; }

    /// <summary>Ack RTT measured for this round, ms (null when not measured).</summary>
    public double? RttMs { get; init; }

    /// <summary>Bytes the receiver acknowledged as applied for this round (null when not measured).</summary>
    public long? AckedBytes { get; init; }

    /// <summary>Guest work units per second during this round (null when the source does not report progress).</summary>
    public double? ProgressRate { get; init; }

    /// <summary>The window controller's reason for the next window (null without the controller).</summary>
    public WindowReason? WindowReason { get; init; }

    /// <summary>The window controller's reason for the next interval (null without the controller).</summary>
    public IntervalReason? IntervalReason { get; init; }

    /// <summary>After launch: the convergence policy's decision after this round's harvest (null before launch).</summary>
    public ConvergenceDecision? Convergence { get; init; }

    /// <summary>Live sender, sync rounds: "if launched now" — the switchover <see cref="ReadinessEstimator"/> predicts after this round.</summary>
    public ReadinessEstimate? Readiness { get; init; }

    /// <summary>Live sender only: the first round after a reconnection carries the outage it followed, ms.</summary>
    public double? ReconnectOutageMs { get; init; }

    /// <summary>Live sender only: pages the resume after a reconnection still has to send again (until they all went).</summary>
    public long? ResendPendingPages { get; init; }

    /// <summary>
    /// A record of what <paramref name="plan"/> decided: pending, planned sends, held and deferred pages; the caller adds
    /// what only it knows (what the transport actually sent, network and guest signals) with <c>with</c>.
    /// </summary>
    public static RoundRecord FromPlan(long round, RoundPhase phase, double timeMs, long dirtyPages, in RoundPlan plan, long windowBytes,
        double intervalMs, long activePages) => new()
    {
        Round = round,
        Phase = phase,
        TimeMs = timeMs,
        DirtyPages = dirtyPages,
        PendingPages = plan.PendingPages,
        SentPages = plan.SendPages,
        SentBytes = plan.SendBytes,
        HeldPages = plan.HeldPages,
        HeldBytes = plan.HeldBytes,
        DeferredPages = plan.DeferredPages,
        WindowBytes = windowBytes,
        IntervalMs = intervalMs,
        RemainingAtLaunchBytes = plan.RemainingBytes,
        ActivePages = activePages,
    };

    /// <summary>Goodput of the round's acknowledged bytes, Mbit/s (null when not measured).</summary>
    public double? GoodputMbps => AckedBytes is { } b && IntervalMs > 0 ? b * 8 / (IntervalMs / 1000) / 1e6 : null;
}
