namespace KvmPresync.Engine.Convergence;

/// <summary>
/// The default convergence policy: QEMU's and Cloud Hypervisor's downtime test, bounded by the launch-to-resume target.
/// After each post-launch harvest, in order:
/// <list type="number">
/// <item>pause when what is pending moves within <see cref="DowntimeTarget"/> at the link rate (the paused delta is then
/// as small as a live round would leave it);</item>
/// <item>when live copying has run for <see cref="MaxLiveDuration"/>: pause, or give up when <see cref="MaxDowntime"/> is
/// set and the rest would take longer than that;</item>
/// <item>at the first decision after launch, copy one live round (pausing there would be a stop-and-copy of all the guest
/// dirtied since the last sync round), unless the guest would dirty more than <see cref="ShrinkRatio"/> of what is pending
/// while the round moves it, or more than <see cref="PastTargetShrinkRatio"/> of it when the round would end past the launch
/// target (the guest outruns the link: pause at once);</item>
/// <item>pause when another live round — moving what is pending, then what the guest dirties meanwhile
/// (<see cref="ConvergenceInput.ExpectedDirtyBytes"/>: its working-set curve, or the last interval's rate) — would end past
/// the launch target (<see cref="ConvergenceInput.LaunchTarget"/>); pausing now is the last moment that meets it;</item>
/// <item>pause when the delta no longer shrinks: pending &gt; <see cref="ShrinkRatio"/> × the previous round's (the guest
/// dirties as fast as the link drains; another live round only delays the pause);</item>
/// <item>otherwise copy another live round.</item>
/// </list>
/// For a guest whose bursts of writes are timed (<see cref="ConvergenceInput.Bursts"/>, from the sender's burst clock) rules 4
/// and 5 look ahead instead: pause when what the guest will dirty during another live round exceeds <see cref="ShrinkRatio"/>
/// × what is pending (a burst falls within it: <see cref="ConvergenceReason.BurstAhead"/>); pause when the round, with what
/// the bursts within it write, would end past the launch target; from the third round on, pause a delta that does not shrink
/// (the guest writes between its bursts too); else copy the round live (<see cref="ConvergenceReason.QuietAhead"/>). Their
/// first live round, when a burst falls within it, sends only the pages the predictor did not hold
/// (<see cref="ConvergenceReason.SendingBeforeBurst"/>): the held ones are what the burst rewrites, so they move once, after
/// it or paused right before the next. Their live rounds stop within themselves at the last moment that meets the launch
/// target (<see cref="ConvergenceDecision.StopAtTarget"/>): such a guest writes through most of its period (the movie
/// guest's frames last 21–29 ms of 40 when first met after a harvest, as every frame of a launch is), and a round that
/// runs into a frame would otherwise end with it pending, one more round or a large pause past the target.
/// With <see cref="QuietWait"/> set, a pause chosen by rule 3 or 4 while the guest is in a burst (the last interval's dirty
/// rate above <see cref="BurstRatio"/> × its usual rate) waits with more live rounds for the quiet right after the burst,
/// for at most <see cref="QuietWait"/> and never past the launch target: the burst's pages then move live, not paused.
/// </summary>
public sealed record DowntimeTargetConvergence : IConvergencePolicy
{
    /// <summary>Pause once what is pending can move within this time at the link rate.</summary>
    public TimeSpan DowntimeTarget { get; init => field = OptionGuard.NotNegative(value, nameof(DowntimeTargetConvergence)); } = TimeSpan.FromMilliseconds(1);

    /// <summary>After launch, live rounds continue for at most this long (harvest clock).</summary>
    public TimeSpan MaxLiveDuration { get; init => field = OptionGuard.NotNegative(value, nameof(DowntimeTargetConvergence)); } = TimeSpan.FromMilliseconds(300);

    /// <summary>A live round pays only when the delta falls below this fraction of the previous one.</summary>
    public double ShrinkRatio { get; init => field = OptionGuard.Require(value, value > 0 && value <= 1, nameof(DowntimeTargetConvergence), "must be in (0, 1]"); } = 0.8;

    /// <summary>A first live round that would end past the launch target pays only when it leaves at most this fraction of what is pending.</summary>
    public const double PastTargetShrinkRatio = 0.5;

    /// <summary>Give up instead of pausing when the time is up and the rest would take longer than this; null = always pause.</summary>
    public TimeSpan? MaxDowntime { get; init => field = OptionGuard.Require(value, value is not { } d || d > TimeSpan.Zero, nameof(DowntimeTargetConvergence), "must be positive, or null (no limit)"); }

    /// <summary>Pause at a quiet moment: wait at most this long for the end of a burst of writes (about one period of a bursty guest); null = off.</summary>
    public TimeSpan? QuietWait { get; init => field = OptionGuard.Require(value, value is not { } q || q > TimeSpan.Zero, nameof(DowntimeTargetConvergence), "must be positive, or null (off)"); }

    /// <summary>A last interval's dirty rate above this multiple of the usual rate is a burst (with <see cref="QuietWait"/>).</summary>
    public double BurstRatio { get; init => field = OptionGuard.Require(value, value > 0 && !double.IsInfinity(value), nameof(DowntimeTargetConvergence), "must be positive and finite"); } = 1.0;

    public ConvergenceDecision Decide(in ConvergenceInput input)
    {
        if (input.PendingTransferTime <= DowntimeTarget)
            return new(ConvergenceAction.Pause, ConvergenceReason.FitsDowntimeTarget);
        if (input.SinceLaunch >= MaxLiveDuration)
        {
            return MaxDowntime is { } limit && input.PendingTransferTime > limit
                ? new(ConvergenceAction.GiveUp, ConvergenceReason.DowntimeWouldExceedLimit)
                : new(ConvergenceAction.Pause, ConvergenceReason.LiveTimeUp);
        }
        // timed bursts: the forecast says what another live round leaves behind. Pausing now moves the pending bytes paused,
        // another round moves them live and pauses with what the round's bursts wrote, for one harvest more of launch-to-
        // resume: the round pays unless a burst falls in it or it would end past the target (chained rounds ending past it
        // made launches 65–80 ms long that no estimate foresaw). The first round always runs; when a burst falls within it,
        // it leaves the held pages — the ones the burst rewrites — for after it.
        // A round that starts past the target falls back to the rules below: bursts that come when the forecast said quiet
        // (a guest off its beat) must not keep the launch chasing them.
        // The round lasts as long as its pages take at the live rate, not the link's: the guest, the sender and the receiver
        // share the CPUs, and a round that runs 40 % longer than the link would take meets that much more of a burst.
        if (input.Bursts is not null && (input.LiveRounds == 0 || input.SinceLaunch <= input.LaunchTarget))
        {
            TimeSpan round = input.LiveRoundTime;
            double roundWrites = input.ExpectedDirtyBytes(round);
            if (input.LiveRounds == 0)
                return new(ConvergenceAction.ContinueLive, roundWrites > 0 ? ConvergenceReason.SendingBeforeBurst : ConvergenceReason.FirstLiveRound) { StopAtTarget = true };
            if (roundWrites > input.PendingBytes * ShrinkRatio)
                return new(ConvergenceAction.Pause, ConvergenceReason.BurstAhead);
            // between bursts the delta should shrink to nothing; a guest that also writes there (the trickle between frames)
            // would keep the launch sending rounds of a few hundred pages until the target: pause with them instead. Not
            // after the first round, which may have left the held pages on purpose.
            if (input.LiveRounds >= 2 && input.PreviousPendingBytes is { } before && input.PendingBytes > before * ShrinkRatio)
                return new(ConvergenceAction.Pause, ConvergenceReason.NotShrinking);
            return input.SinceLaunch + round + input.TransferTime(roundWrites) > input.LaunchTarget
                ? new(ConvergenceAction.Pause, ConvergenceReason.LaunchTargetReached)
                : new(ConvergenceAction.ContinueLive, ConvergenceReason.QuietAhead) { StopAtTarget = true };
        }
        // the first live round runs: pausing at once would make the launch a stop-and-copy of everything the guest dirtied
        // since the last sync round (downtime = launch-to-resume), whatever the target. Unless the guest outruns the link: when
        // it would dirty, while the round moves what is pending, more than ShrinkRatio of it, the round only delays the same
        // pause by its own length; and a round that would end past the launch target must at least halve what is pending
        // (a cache rewriting 70 pages a millisecond over a 1 Gbit/s link: 120 MB pending, a live round of 0.8 s, 70–100 MB
        // dirtied meanwhile — a launch of 1.3 s with 0.6 s of downtime, against 0.6 s for both)
        if (input.PreviousPendingBytes is not { } previous)
        {
            TimeSpan round = input.LiveRoundTime;
            double shrinkTo = input.SinceLaunch + round > input.LaunchTarget ? PastTargetShrinkRatio : ShrinkRatio;
            return input.ExpectedDirtyBytes(round) > input.PendingBytes * shrinkTo
                ? new(ConvergenceAction.Pause, ConvergenceReason.NotShrinking)
                : new(ConvergenceAction.ContinueLive, ConvergenceReason.FirstLiveRound);
        }
        double dirtiedMeanwhile = input.ExpectedDirtyBytes(input.PendingTransferTime);
        ConvergenceDecision? pause = null;
        if (input.SinceLaunch + input.PendingTransferTime + input.TransferTime(Math.Min(dirtiedMeanwhile, input.PendingBytes)) > input.LaunchTarget)
            pause = new(ConvergenceAction.Pause, ConvergenceReason.LaunchTargetReached);
        else if (input.PendingBytes > previous * ShrinkRatio)
            pause = new(ConvergenceAction.Pause, ConvergenceReason.NotShrinking);
        else
            return new(ConvergenceAction.ContinueLive, ConvergenceReason.Shrinking);
        return WaitForQuiet(input) ? new(ConvergenceAction.ContinueLive, ConvergenceReason.WaitingForQuiet) : pause.Value;
    }

    /// <summary>With <see cref="QuietWait"/>: the guest is in a burst, and waiting for its end stays within the wait and the launch target.</summary>
    private bool WaitForQuiet(in ConvergenceInput input) =>
        QuietWait is { } wait
        && input.MeanDirtyBytesPerSecond > 0
        && input.DirtyBytesPerSecond > BurstRatio * input.MeanDirtyBytesPerSecond
        && (input.WaitingForQuietFor ?? TimeSpan.Zero) < wait
        && input.SinceLaunch + input.PendingTransferTime < input.LaunchTarget;
}
