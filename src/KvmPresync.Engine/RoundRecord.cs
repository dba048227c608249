using KvmPresync.Core;
namespace KvmPresync.Engine;

/// <summary>
/// Per-round statistics of a pre-sync run (live or simulated): what was dirtied, pending, sent and held, the
/// window and interval, and what would remain to send if launch happened right after this round.
/// Plain numbers (milliseconds as double) so it serializes to flat JSON for plots.
/// </summary>
public sealed record RoundRecord
{
    public required long Round { get; init; }

    /// <summary>Time of the round's harvest since the start of sync, ms.</summary>
    public required double TimeMs { get; init; }

    /// <summary>Pages newly reported dirty by this round's harvest.</summary>
    public required long DirtyPages { get; init; }

    /// <summary>Pages pending before this round's send (including held-back pages).</summary>
    public required long PendingPages { get; init; }

    public required long SentPages { get; init; }

    /// <summary>Wire bytes sent this round (headers included).</summary>
    public required long SentBytes { get; init; }

    public required long HeldPages { get; init; }

    public required long HeldBytes { get; init; }

    /// <summary>Pending pages neither sent nor held: left over because the window was full.</summary>
    public required long DeferredPages { get; init; }

    /// <summary>Bytes this round was allowed to send.</summary>
    public required long WindowBytes { get; init; }

    /// <summary>Round length, ms.</summary>
    public required double IntervalMs { get; init; }

    /// <summary>Wire bytes still pending after this round's send: what launch would have to move now.</summary>
    public required long RemainingAtLaunchBytes { get; init; }

    /// <summary>Predictor's active pages (dirtied within its history) after this round's update; 0 without a predictor.</summary>
    public long ActivePages { get; init; }

    /// <summary>Ack RTT measured for this round, ms (null when not measured).</summary>
    public double? RttMs { get; init; }

    /// <summary>Bytes acknowledged during this round (null when not measured).</summary>
    public long? AckedBytes { get; init; }

    /// <summary>The window controller's reason for the next window (null without the controller).</summary>
    public WindowReason? WindowReason { get; init; }

    /// <summary>The window controller's reason for the next interval (null without the controller).</summary>
    public IntervalReason? IntervalReason { get; init; }
}
