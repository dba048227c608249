namespace KvmPresync.Engine.Convergence;

/// <summary>
/// The default convergence policy, as QEMU and Cloud Hypervisor decide it, plus a shrink test:
/// <list type="number">
/// <item>pause when what is pending moves within <see cref="DowntimeTarget"/> at the link rate;</item>
/// <item>pause when the delta no longer shrinks: pending &gt; <see cref="ShrinkRatio"/> × the previous round's pending
/// (the guest dirties as fast as the link drains; another live round only delays the pause);</item>
/// <item>when live copying has run for <see cref="MaxLiveDuration"/>: pause, or give up when
/// <see cref="MaxDowntime"/> is set and the rest would take longer than that;</item>
/// <item>otherwise copy another live round.</item>
/// </list>
/// </summary>
public sealed record DowntimeTargetConvergence : IConvergencePolicy
{
    /// <summary>Pause once what is pending can move within this time at the link rate.</summary>
    public TimeSpan DowntimeTarget { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>After launch, live rounds continue for at most this long (harvest clock).</summary>
    public TimeSpan MaxLiveDuration { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>A live round pays only when the delta falls below this fraction of the previous one.</summary>
    public double ShrinkRatio { get; init; } = 0.8;

    /// <summary>Give up instead of pausing when the time is up and the rest would take longer than this; null = always pause.</summary>
    public TimeSpan? MaxDowntime { get; init; }

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
        if (input.PreviousPendingBytes is not { } previous)
            return new(ConvergenceAction.ContinueLive, ConvergenceReason.FirstLiveRound);
        return input.PendingBytes > previous * ShrinkRatio
            ? new(ConvergenceAction.Pause, ConvergenceReason.NotShrinking)
            : new(ConvergenceAction.ContinueLive, ConvergenceReason.Shrinking);
    }

    /// <summary>Throws naming the first invalid option.</summary>
    public void Validate()
    {
        if (DowntimeTarget < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(DowntimeTarget), DowntimeTarget, "downtime target must not be negative");
        if (MaxLiveDuration < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(MaxLiveDuration), MaxLiveDuration, "maximum live duration must not be negative");
        if (!(ShrinkRatio > 0 && ShrinkRatio <= 1)) throw new ArgumentOutOfRangeException(nameof(ShrinkRatio), ShrinkRatio, "shrink ratio must be in (0, 1]");
        if (MaxDowntime is { } d && d <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(MaxDowntime), d, "maximum downtime must be positive");
    }
}
