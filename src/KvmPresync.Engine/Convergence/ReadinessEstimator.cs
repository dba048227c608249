namespace KvmPresync.Engine.Convergence;

/// <summary>What <see cref="ReadinessEstimator"/> knows about the run, all measured or configured.</summary>
public readonly record struct ReadinessInputs
{
    /// <summary>Wire bytes launch would move now: pending pages, held-back ones included.</summary>
    public required long PendingBytes { get; init; }

    /// <summary>The guest's usual dirty rate, bytes per second (<see cref="DirtyRateMeter.MeanBytesPerSecond"/>).</summary>
    public required double DirtyBytesPerSecond { get; init; }

    /// <summary>
    /// Time since the harvest <see cref="PendingBytes"/> was counted at: launching now, the first harvest after launch also
    /// finds what the guest dirtied meanwhile, at <see cref="NewlyPendingBytesPerSecond"/>.
    /// </summary>
    public TimeSpan SinceHarvest { get; init; }

    /// <summary>The rate at which pages become newly pending (<see cref="DirtyRateMeter.MeanNewlyPendingBytesPerSecond"/>).</summary>
    public double NewlyPendingBytesPerSecond { get; init; }

    /// <summary>The link's rate, bits per second.</summary>
    public required double LinkBitsPerSecond { get; init; }

    /// <summary>The launch-to-resume target the convergence policy works to.</summary>
    public required TimeSpan LaunchTarget { get; init; }

    /// <summary>Last measured round-trip time (the paused phase waits for one: FinalState out, Resumed back).</summary>
    public TimeSpan? Rtt { get; init; }

    /// <summary>What each live round costs besides moving its bytes (the harvest), measured by the sender.</summary>
    public TimeSpan RoundOverhead { get; init; }

    /// <summary>The downtime's fixed part besides the RTT and the bytes: pausing, saving and restoring state, verifying, starting.</summary>
    public TimeSpan SwitchoverCost { get; init; }

    /// <summary>Wire bytes of the vCPU/device state sent paused.</summary>
    public long StateBytes { get; init; }
}

/// <summary>
/// Predicts the switchover as if launch were asked for now, by running the run's own convergence policy forward over a
/// fluid model: launch finds what is pending plus what became pending since the last harvest; each live round moves what is pending at the link rate (plus <see cref="ReadinessInputs.RoundOverhead"/>)
/// while the guest dirties <see cref="ReadinessInputs.DirtyBytesPerSecond"/> into the next round; when the policy pauses,
/// the downtime is the rest plus the state at the link rate, one RTT and the fixed switchover cost. Pure and cheap (a few
/// policy calls), so the sender runs it every round.
/// </summary>
public static class ReadinessEstimator
{
    /// <summary>Bound on modelled live rounds (a policy that never pauses is cut off here, as its MaxLiveDuration would).</summary>
    private const int MaxRounds = 256;

    public static ReadinessEstimate Estimate(IConvergencePolicy policy, in ReadinessInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (!(inputs.LinkBitsPerSecond > 0) || double.IsInfinity(inputs.LinkBitsPerSecond))
            throw new ArgumentOutOfRangeException(nameof(inputs), inputs.LinkBitsPerSecond, "the link rate must be a positive, finite number of bits per second");
        double bytesPerSecond = inputs.LinkBitsPerSecond / 8;
        double dirtyRate = Math.Max(0, inputs.DirtyBytesPerSecond);
        double pending = Math.Max(0, inputs.PendingBytes) + Math.Max(0, inputs.NewlyPendingBytesPerSecond) * Math.Max(0, inputs.SinceHarvest.TotalSeconds);
        long? previous = null;
        TimeSpan sinceLaunch = TimeSpan.Zero;
        double bytes = 0;
        for (int round = 0; ; round++)
        {
            var input = new ConvergenceInput
            {
                PendingBytes = (long)pending,
                PreviousPendingBytes = previous,
                DirtyBytesPerSecond = dirtyRate,
                MeanDirtyBytesPerSecond = dirtyRate,
                LinkBitsPerSecond = inputs.LinkBitsPerSecond,
                Rtt = inputs.Rtt,
                SinceLaunch = sinceLaunch,
                LaunchTarget = inputs.LaunchTarget,
                LiveRounds = round,
            };
            ConvergenceDecision decision = round < MaxRounds ? policy.Decide(input) : new(ConvergenceAction.Pause, ConvergenceReason.LiveTimeUp);
            if (decision.Action == ConvergenceAction.GiveUp)
                return new ReadinessEstimate(Ms(sinceLaunch), 0, (long)bytes, round, GivesUp: true);
            if (decision.Action == ConvergenceAction.Pause)
            {
                TimeSpan downtime = inputs.RoundOverhead + TimeSpan.FromSeconds((pending + inputs.StateBytes) / bytesPerSecond)
                                    + (inputs.Rtt ?? TimeSpan.Zero) + inputs.SwitchoverCost;
                return new ReadinessEstimate(Ms(sinceLaunch + downtime), Ms(downtime), (long)(bytes + pending + inputs.StateBytes), round);
            }
            TimeSpan live = inputs.RoundOverhead + TimeSpan.FromSeconds(pending / bytesPerSecond);
            bytes += pending;
            previous = (long)pending;
            pending = dirtyRate * live.TotalSeconds;
            sinceLaunch += live;
        }
    }

    private static double Ms(TimeSpan t) => t.TotalMilliseconds;
}
