using System.Text.Json.Serialization;
using KvmPresync.Core;
namespace KvmPresync.Engine;

/// <summary>Phase of the window controller.</summary>
public enum WindowPhase
{
    /// <summary>Exponential growth (window doubles per round) below ssthresh.</summary>
    SlowStart = 1,

    /// <summary>Additive increase at or above ssthresh, or after any decrease.</summary>
    CongestionAvoidance = 2,
}

/// <summary>Why the window changed (or did not) in a round.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<WindowReason>))]
public enum WindowReason
{
    /// <summary>Slow start: window doubled.</summary>
    SlowStartGrowth = 1,

    /// <summary>Doubling reached ssthresh: window set to ssthresh, phase → congestion avoidance.</summary>
    ReachedSsthresh = 2,

    /// <summary>Congestion avoidance: window + additive increase.</summary>
    AdditiveIncrease = 3,

    /// <summary>Multiplicative decrease: RTT rose above base RTT × factor.</summary>
    DecreaseOnRtt = 4,

    /// <summary>Multiplicative decrease: goodput below what was sent by more than the set fraction.</summary>
    DecreaseOnGoodput = 5,

    /// <summary>Multiplicative decrease: guest progress fell below its unsynced baseline by more than the set fraction.</summary>
    DecreaseOnSlowdown = 6,

    /// <summary>A pressure signal within the hold-off after a decrease: window kept.</summary>
    HoldInRecovery = 7,

    /// <summary>The round used less than the app-limited fraction of the window: no growth.</summary>
    HoldAppLimited = 8,

    /// <summary>Growth blocked by the maximum window.</summary>
    HoldAtMaximum = 9,
}

/// <summary>Why the round interval changed (or did not).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<IntervalReason>))]
public enum IntervalReason
{
    Unchanged = 1,

    /// <summary>Dirty bytes outran the window: longer rounds coalesce rewrites.</summary>
    LengthenedDirtyOutrunsWindow = 2,

    /// <summary>The window drained everything sendable with room to spare: shorter rounds keep the target fresher.</summary>
    ShortenedWindowDrained = 3,
}

/// <summary>Pressure signals seen in a round (several may fire together).</summary>
[Flags]
public enum PressureSignals
{
    None = 0,
    Rtt = 1,
    Goodput = 2,
    Slowdown = 4,
}

/// <summary>One round's decision of <see cref="SyncWindow"/> with the inputs it was based on.</summary>
public sealed record WindowDecision
{
    public required long Round { get; init; }

    public required RoundFeedback Feedback { get; init; }

    /// <summary>Minimum RTT seen so far, including this round (null until an RTT was measured).</summary>
    public TimeSpan? BaseRtt { get; init; }

    public required PressureSignals Signals { get; init; }

    public required long WindowBefore { get; init; }

    public required long WindowAfter { get; init; }

    public required long SsthreshAfter { get; init; }

    public required WindowPhase PhaseAfter { get; init; }

    public required WindowReason Reason { get; init; }

    /// <summary>True when the rate cap lowered the window this round.</summary>
    public required bool RateCapped { get; init; }

    public required TimeSpan IntervalBefore { get; init; }

    public required TimeSpan IntervalAfter { get; init; }

    public required IntervalReason IntervalReason { get; init; }
}
