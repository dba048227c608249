using System.Text.Json.Serialization;
namespace KvmPresync.Engine.Convergence;

/// <summary>What to do after a post-launch harvest.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ConvergenceAction>))]
public enum ConvergenceAction
{
    Invalid = 0,

    /// <summary>Send everything pending with the guest still running, then harvest again.</summary>
    ContinueLive = 1,

    /// <summary>Pause the guest now; the rest moves while it is stopped.</summary>
    Pause = 2,

    /// <summary>Abandon the migration; the source guest keeps running.</summary>
    GiveUp = 3,
}

/// <summary>Why a <see cref="ConvergenceAction"/> was chosen.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ConvergenceReason>))]
public enum ConvergenceReason
{
    Invalid = 0,

    /// <summary>What is pending moves within the downtime target at the link rate.</summary>
    FitsDowntimeTarget = 1,

    /// <summary>The delta shrank enough since the previous round: another live round pays.</summary>
    Shrinking = 2,

    /// <summary>The delta no longer shrinks (the guest dirties as fast as the link drains): iterating only delays the pause.</summary>
    NotShrinking = 3,

    /// <summary>Live copying has run as long as allowed; pausing with what is left.</summary>
    LiveTimeUp = 4,

    /// <summary>Live copying has run as long as allowed and what is left would exceed the maximum downtime.</summary>
    DowntimeWouldExceedLimit = 5,

    /// <summary>First decision after launch with something to send.</summary>
    FirstLiveRound = 6,

    /// <summary>Another live round (and what the guest dirties during it) would take launch-to-resume past the launch target.</summary>
    LaunchTargetReached = 7,

    /// <summary>The guest is in a burst of writes: a live round more, to pause in the quiet right after it (bounded by the quiet wait and the launch target).</summary>
    WaitingForQuiet = 8,

    /// <summary>Timed bursts: a burst falls within the next live round, which would leave about as much pending as now (pause before it).</summary>
    BurstAhead = 9,

    /// <summary>Timed bursts: the next live round falls between bursts, so it leaves little pending (send it live, pause after).</summary>
    QuietAhead = 10,

    /// <summary>
    /// Timed bursts, the first live round: a burst falls within it, so it sends only what the predictor did not hold (the pages
    /// the burst is about to rewrite stay pending for after it, or for the pause).
    /// </summary>
    SendingBeforeBurst = 11,

}

/// <summary>A convergence policy's answer.</summary>
public readonly record struct ConvergenceDecision(ConvergenceAction Action, ConvergenceReason Reason)
{
    /// <summary>
    /// With <see cref="ConvergenceAction.ContinueLive"/>: the sender checks before each batch of the round whether pausing after
    /// the next one, with the rest (the round's unsent pages, the pending ones it does not send, what the guest dirtied since
    /// the harvest), would end launch-to-resume past the launch target, and then pauses (<see cref="ConvergenceReason.LaunchTargetReached"/>)
    /// once the batch in flight is out. Not in the simulator, nor over several streams: there the round sends everything and
    /// the next decision pauses.
    /// </summary>
    [JsonIgnore]
    public bool StopAtTarget { get; init; }

    public override string ToString() => StopAtTarget ? $"{Action} ({Reason}, stops at the target)" : $"{Action} ({Reason})";
}
