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

    /// <summary>
    /// Wire bytes of the pages the guest dirtied since that harvest, looked at without a harvest (the burst clock's last look)
    /// when known: the launch's first harvest finds them, so the estimate counts them instead of guessing them from
    /// <see cref="Bursts"/> or <see cref="WorkingSet"/> over <see cref="SinceHarvest"/>. Null: not looked at.
    /// </summary>
    public double? DirtiedSinceHarvestBytes { get; init; }

    /// <summary>
    /// The guest's working-set curve (<see cref="DirtyRateMeter.WorkingSet"/>): what it dirties within a live round shorter
    /// than a sync round. Null: <see cref="DirtyBytesPerSecond"/> at every time scale.
    /// </summary>
    public DirtyWorkingSet? WorkingSet { get; init; }

    /// <summary>
    /// When the guest's bursts of writes come (<see cref="BurstClock"/>), if timed: launch then finds what the bursts since the
    /// harvest wrote, and each live round what the bursts within it write, by the clock, not spread evenly.
    /// </summary>
    public BurstTimedWrites? Bursts { get; init; }

    /// <summary>Of <see cref="PendingBytes"/>, the wire bytes of the pages the predictor held (what a first live round sending before a burst leaves pending).</summary>
    public long HeldBytes { get; init; }

    /// <summary>Harvest-clock time of the harvest <see cref="PendingBytes"/> was counted at (the clock of <see cref="Bursts"/>).</summary>
    public TimeSpan HarvestTime { get; init; }

    /// <summary>The rate at which pages become newly pending (<see cref="DirtyRateMeter.MeanNewlyPendingBytesPerSecond"/>).</summary>
    public double NewlyPendingBytesPerSecond { get; init; }

    /// <summary>
    /// The link's rate, bits per second (what the convergence policy is told; the paused delta moves at it, or at
    /// <see cref="PausedTransferBitsPerSecond"/> when that is lower).
    /// </summary>
    public required double LinkBitsPerSecond { get; init; }

    /// <summary>
    /// What the live rounds' pages actually move at, bits per second, when the sender measured it lower than the link rate (the
    /// CPU shared by the running guest, the sender and the receiver bounds it); null = <see cref="LinkBitsPerSecond"/>.
    /// </summary>
    public double? LiveTransferBitsPerSecond { get; init; }

    /// <summary>
    /// What the live rounds' pages move at back to back, bits per second, where measured apart from
    /// <see cref="LiveTransferBitsPerSecond"/>: the estimate times its modelled rounds with it while the policy it runs forward
    /// is told <see cref="LiveTransferBitsPerSecond"/>, the rate the policy decides with in the launch. A sync round starts
    /// with the rate limiter's burst, which live rounds never have; the policy's rate leaves the burst's bytes out but keeps
    /// the time they took through hashing and compression (the mpv video trace: 2.4–3.7 Gbit/s of pages measured, 3.75 moved
    /// in its live rounds). Null = <see cref="LiveTransferBitsPerSecond"/>.
    /// </summary>
    public double? LiveRoundBitsPerSecond { get; init; }

    /// <summary>
    /// What the paused delta's pages move at, bits per second (<see cref="ReadinessEstimator.PausedRate"/>: the link's rate
    /// times the compression speed-up of the codec the paused guest's freed CPU makes best, or, when the CPU rather than the
    /// link bounds the pages, the live rate scaled up by the CPU the paused guest gives back); null =
    /// <see cref="LinkBitsPerSecond"/>.
    /// </summary>
    public double? PausedTransferBitsPerSecond { get; init; }

    /// <summary>
    /// Page bytes (as <see cref="PendingBytes"/> counts them) that the rate limiter lets go at once when launch comes: the
    /// first live round moves them without waiting for the link (0: none, a send was under way).
    /// </summary>
    public long LinkBurstBytes { get; init; }

    /// <summary>
    /// Page bytes per second the sender gathers and compresses when the live pages go compressed (the compressor's measured
    /// speed with the codec it would choose); null: they go raw. The rate limiter's burst lets compressed bytes go at once, but
    /// no faster than they are compressed: a first round of 709 audio pages (2.9 MB, 0.98 MB on the wire) took 7–11 ms at
    /// the compressor's pace, where the burst's 0.5 MB at once and the rest at the link would take 3.8 ms.
    /// </summary>
    public double? CompressBytesPerSecond { get; init; }

    /// <summary>
    /// With <see cref="Bursts"/>: how far either side of the forecast the bursts may fall against the modelled rounds (the
    /// rounds' own times vary by a few milliseconds: the sender shares the CPUs with the guest and the receiver). The estimate
    /// is the mean over that spread; zero: the forecast as it is; null: <see cref="ReadinessEstimator.DefaultBurstPhaseSpread"/>.
    /// </summary>
    public TimeSpan? BurstPhaseSpread { get; init; }

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

    /// <summary>
    /// How often the sender checks a live round that stops at the launch target (<see cref="ConvergenceDecision.StopAtTarget"/>):
    /// once a batch; a stop then waits for the batch in flight. Zero: continuously, at once.
    /// </summary>
    public TimeSpan StopCheckInterval { get; init; }
}

/// <summary>
/// Predicts the switchover as if launch were asked for now, by running the run's own convergence policy forward over a
/// fluid model: launch finds what is pending plus what became pending since the last harvest (not what the guest rewrote among
/// the pages still unsent: <see cref="NotAmongUnsentShare"/>); each live round moves what is
/// pending at the live rounds' pace (<see cref="ReadinessInputs.LiveRoundBitsPerSecond"/>, else the policy's live transfer
/// rate <see cref="ReadinessInputs.LiveTransferBitsPerSecond"/>, plus
/// <see cref="ReadinessInputs.RoundOverhead"/>) while the guest dirties what its working-set curve
/// (<see cref="ReadinessInputs.WorkingSet"/>) gives for a window of that round's length into the next round — or, when its
/// bursts are timed (<see cref="ReadinessInputs.Bursts"/>), what the bursts that fall within that round write (added to the
/// held pages a first round left in proportion: a burst rewrites those and others), averaged over the bursts' phase spread
/// (<see cref="ReadinessInputs.BurstPhaseSpread"/>); the first round moves the rate limiter's burst at once
/// (<see cref="ReadinessInputs.LinkBurstBytes"/>), but no faster than its pages are compressed
/// (<see cref="ReadinessInputs.CompressBytesPerSecond"/>); when the policy pauses, the downtime is the rest plus the state at the paused
/// rate (<see cref="PausedRate"/>: the link's, unless the CPU bounds it), one RTT and the fixed switchover cost. Pure and cheap (a few policy calls, seven with timed bursts: 4–15 µs measured
/// at launch on movie and the mpv trace, 29 Nov 2026), so the sender runs it every round.
/// </summary>
public static class ReadinessEstimator
{
    /// <summary>Bound on modelled live rounds (a policy that never pauses is cut off here, as its MaxLiveDuration would).</summary>
    private const int MaxRounds = 256;

    /// <summary>
    /// Where the timed bursts are put, as fractions of <see cref="ReadinessInputs.BurstPhaseSpread"/> either side of the
    /// forecast: whether a burst lands just before or just after a round's end decides whether the policy pauses or sends
    /// another round, outcomes 10–20 ms apart, so one phase is one side of a knife edge and the mean is the expectation.
    /// </summary>
    private static readonly double[] PhaseSpread = [-1, -2.0 / 3, -1.0 / 3, 0, 1.0 / 3, 2.0 / 3, 1];

    /// <summary>The phase spread when the inputs give none: ±6 ms (a movie launch's rounds measured 3–10 ms off the model).</summary>
    public static readonly TimeSpan DefaultBurstPhaseSpread = TimeSpan.FromMilliseconds(6);

    public static ReadinessEstimate Estimate(IConvergencePolicy policy, in ReadinessInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (!(inputs.LinkBitsPerSecond > 0) || double.IsInfinity(inputs.LinkBitsPerSecond))
            throw new ArgumentOutOfRangeException(nameof(inputs), inputs.LinkBitsPerSecond, "the link rate must be a positive, finite number of bits per second");
        ReadinessEstimate nominal = EstimateOnce(policy, inputs);
        TimeSpan spread = inputs.BurstPhaseSpread ?? DefaultBurstPhaseSpread;
        if (inputs.Bursts is not { } bursts || spread <= TimeSpan.Zero) return nominal;
        // timed bursts: the mean over where they may fall
        double launch = 0, downtime = 0, bytes = 0;
        foreach (double shift in PhaseSpread)
        {
            ReadinessEstimate e = shift == 0 ? nominal : EstimateOnce(policy, inputs with
            {
                Bursts = bursts with { Bursts = bursts.Bursts with { Anchor = bursts.Bursts.Anchor + spread * shift } },
            });
            launch += e.LaunchToResumeMs;
            downtime += e.DowntimeMs;
            bytes += e.Bytes;
        }
        int n = PhaseSpread.Length;
        return nominal with { LaunchToResumeMs = launch / n, DowntimeMs = downtime / n, Bytes = (long)(bytes / n) };
    }

    private static ReadinessEstimate EstimateOnce(IConvergencePolicy policy, in ReadinessInputs inputs)
    {
        double policyBitsPerSecond = ConvergenceInput.LiveRate(inputs.LiveTransferBitsPerSecond, inputs.LinkBitsPerSecond);
        // the policy decides with its rate; the modelled rounds move at the live rounds' own pace where that was measured
        double liveBytesPerSecond = ConvergenceInput.LiveRate(inputs.LiveRoundBitsPerSecond ?? policyBitsPerSecond, inputs.LinkBitsPerSecond) / 8;
        TimeSpan overhead = inputs.RoundOverhead;
        double? compressBytesPerSecond = inputs.CompressBytesPerSecond is { } c && c > 0 ? c : null;
        double dirtyRate = Math.Max(0, inputs.DirtyBytesPerSecond);
        DirtyWorkingSet workingSet = inputs.WorkingSet ?? DirtyWorkingSet.Steady(dirtyRate);
        TimeSpan sinceHarvest = inputs.SinceHarvest > TimeSpan.Zero ? inputs.SinceHarvest : TimeSpan.Zero;
        double newlyRate = Math.Max(0, inputs.NewlyPendingBytesPerSecond);
        // of what the guest dirties since the harvest, the newly pending share adds to the launch's pages
        BurstTimedWrites? bursts = inputs.Bursts;
        double? looked = inputs.DirtiedSinceHarvestBytes is { } d && d >= 0 ? d : null;
        double newly = (dirtyRate > 0
            ? Math.Min(1, newlyRate / dirtyRate) * (looked ?? bursts?.BytesWithin(inputs.HarvestTime, sinceHarvest) ?? workingSet.BytesWithin(sinceHarvest))
            : looked ?? newlyRate * sinceHarvest.TotalSeconds) * NotAmongUnsentShare(inputs);
        TimeSpan launchedAt = inputs.HarvestTime + sinceHarvest;
        double pending = Math.Max(0, inputs.PendingBytes) + newly;
        // the first decision sees the interval since the last harvest; each later one the live round before it
        double intervalRate = sinceHarvest > TimeSpan.Zero ? workingSet.RateWithin(sinceHarvest) : dirtyRate;
        long? previous = null;
        TimeSpan sinceLaunch = TimeSpan.Zero;
        double bytes = 0;
        for (int round = 0; ; round++)
        {
            var input = new ConvergenceInput
            {
                PendingBytes = (long)pending,
                PreviousPendingBytes = previous,
                DirtyBytesPerSecond = intervalRate,
                MeanDirtyBytesPerSecond = dirtyRate,
                WorkingSet = inputs.WorkingSet,
                Bursts = bursts,
                Now = launchedAt + sinceLaunch,
                LinkBitsPerSecond = inputs.LinkBitsPerSecond,
                LiveTransferBitsPerSecond = policyBitsPerSecond,
                Rtt = inputs.Rtt,
                SinceLaunch = sinceLaunch,
                LaunchTarget = inputs.LaunchTarget,
                LiveRounds = round,
            };
            ConvergenceDecision decision = round < MaxRounds ? policy.Decide(input) : new(ConvergenceAction.Pause, ConvergenceReason.LiveTimeUp);
            if (decision.Action == ConvergenceAction.GiveUp)
                return new ReadinessEstimate(Ms(sinceLaunch), 0, (long)bytes, round, GivesUp: true);
            if (decision.Action == ConvergenceAction.Pause)
                return Paused(inputs, round, sinceLaunch, bytes, pending);
            // a first round sending before a burst leaves the held pages pending; the burst rewrites them (and more)
            double left = decision.Reason == ConvergenceReason.SendingBeforeBurst ? Math.Min(pending, Math.Max(0, inputs.HeldBytes)) : 0;
            double credit = round == 0 ? Math.Min(pending - left, Math.Max(0, inputs.LinkBurstBytes)) : 0;
            double sendSeconds = (pending - left - credit) / liveBytesPerSecond;
            if (compressBytesPerSecond is { } compress) sendSeconds = Math.Max(sendSeconds, (pending - left) / compress); // the credit waits for the compressor
            TimeSpan live = inputs.RoundOverhead + TimeSpan.FromSeconds(sendSeconds);
            if (decision.StopAtTarget)
            {
                // the sender checks once a batch whether pausing after the next would end past the target; when it does, it
                // pauses once the batch in flight is out
                TimeSpan now = launchedAt + sinceLaunch, interval = inputs.StopCheckInterval;
                TimeSpan step = interval > TimeSpan.Zero ? interval : TimeSpan.FromMilliseconds(0.5);
                for (TimeSpan t = TimeSpan.Zero; t < live - 2 * interval; t += step) // a round ending within the horizon is not stopped
                {
                    if (sinceLaunch + t + 2 * interval + Downtime(inputs, RestAt(t)) < inputs.LaunchTarget) continue;
                    TimeSpan at = t > TimeSpan.Zero ? t + interval : t; // the batch in flight goes out first
                    return Paused(inputs, t > TimeSpan.Zero ? round + 1 : round, sinceLaunch + at, bytes + MovedBy(at), RestAt(at));
                }

                double MovedBy(TimeSpan t)
                {
                    double seconds = Math.Max(0, (t - overhead).TotalSeconds);
                    double moved = credit + seconds * liveBytesPerSecond;
                    if (compressBytesPerSecond is { } compress) moved = Math.Min(moved, seconds * compress);
                    return Math.Min(pending - left, moved);
                }
                double RestAt(TimeSpan t) => pending - MovedBy(t) + NewlyDirtied(bursts?.BytesWithin(now, t) ?? workingSet.BytesWithin(t), left, bursts);
            }
            bytes += pending - left;
            previous = (long)pending;
            double dirtied = bursts?.BytesWithin(launchedAt + sinceLaunch, live) ?? workingSet.BytesWithin(live);
            // a burst rewrites the held pages and others: what it wrote so far adds to them in proportion
            pending = left > 0 && bursts is { } b && b.BytesPerBurst > left ? left + NewlyDirtied(dirtied, left, bursts) : Math.Max(left, dirtied);
            intervalRate = bursts is null ? workingSet.RateWithin(live) : pending / live.TotalSeconds;
            sinceLaunch += live;
        }
    }

    /// <summary>
    /// The downtime of a pause with <paramref name="pendingBytes"/> left: one harvest, the rest and the state at the paused
    /// rate (<see cref="ReadinessInputs.PausedTransferBitsPerSecond"/>: the link's, unless the CPU bounds it), one RTT and the
    /// fixed switchover cost. The sender's check of a round that stops at the target
    /// (<see cref="ConvergenceDecision.StopAtTarget"/>) uses it too, so the launch pauses where its estimate says.
    /// </summary>
    public static TimeSpan Downtime(in ReadinessInputs inputs, double pendingBytes) =>
        inputs.RoundOverhead + TimeSpan.FromSeconds((Math.Max(0, pendingBytes) + inputs.StateBytes) / (PausedRateOf(inputs) / 8))
        + (inputs.Rtt ?? TimeSpan.Zero) + inputs.SwitchoverCost;

    private static double PausedRateOf(in ReadinessInputs inputs) =>
        inputs.PausedTransferBitsPerSecond is { } p && p > 0 && double.IsFinite(p) ? p : inputs.LinkBitsPerSecond;

    /// <summary>
    /// What the paused delta moves at, bits per second. The link's rate, unless the live rounds showed that the CPU bounds the
    /// pages' pace (<paramref name="liveBitsPerSecond"/> measured below <paramref name="linkBitsPerSecond"/>: hashing,
    /// compressing and receiving shared the host's CPUs with the running guest). Paused, the guest gives back the
    /// <paramref name="guestCpus"/> it used, so the same work spreads over <paramref name="hostCpus"/> instead of
    /// <paramref name="hostCpus"/> − <paramref name="guestCpus"/>: live × P / (P − g), at most the link's rate — the pace if
    /// the pipeline used every freed cycle, so still a bound from below on the delta's time. Measured on the memcached trace
    /// (8 launches, 113–124 MB of pages paused): the live rate 155–169 MB/s, the guest's vCPU 0.45–0.47 of a CPU, the paused
    /// delta 155–202 MB/s; where zstd's speed-up was expected, the link bound alone gave 441 ms for a delta of 590. Without
    /// <paramref name="guestCpus"/> (the source cannot tell) the link's rate, as before. <paramref name="pausedLinkBitsPerSecond"/>,
    /// when given, is the link's side of the paused pace in place of <paramref name="linkBitsPerSecond"/>: the link's rate
    /// times the speed-up of the codec that wins once the guest's CPU is freed (a codec too slow beside the running guest
    /// may win paused: <c>CompressionChooser.CpuFreed</c>).
    /// </summary>
    public static double PausedRate(double? liveBitsPerSecond, double linkBitsPerSecond, double? guestCpus, int hostCpus,
        double? pausedLinkBitsPerSecond = null)
    {
        double link = pausedLinkBitsPerSecond is { } p && p > 0 && double.IsFinite(p) ? p : linkBitsPerSecond;
        double live = ConvergenceInput.LiveRate(liveBitsPerSecond, linkBitsPerSecond);
        if (live >= linkBitsPerSecond || guestCpus is null) return link; // the link, not the CPU, bounded the live rounds
        return Math.Min(link, live * CpuFreedScale(guestCpus, hostCpus));
    }

    /// <summary>
    /// How many times the CPU left to the migration grows when the guest pauses: P / (P − g), P the host's CPUs and g the CPUs
    /// the guest used (at most 0.9 P); 1 when the guest's share is unknown.
    /// </summary>
    public static double CpuFreedScale(double? guestCpus, int hostCpus)
    {
        if (guestCpus is not { } g || !double.IsFinite(g) || hostCpus < 1) return 1;
        double used = Math.Clamp(g, 0, 0.9 * hostCpus);
        return hostCpus / (hostCpus - used);
    }

    /// <summary>
    /// Of the pages the guest dirtied since the harvest, the share that is not already pending unsent: pages a sync round has not
    /// sent yet (<see cref="ReadinessInputs.PendingBytes"/> less <see cref="ReadinessInputs.HeldBytes"/>) are pending once however
    /// often the guest rewrites them. The dirtied pages are taken to fall evenly over the guest's working set
    /// (<see cref="DirtyWorkingSet.SetBytes"/>) outside the held pages (the measured newly pending share already counts those);
    /// 1 without a set point, or when more is pending than the working set holds (the initial copy's pages are not the guest's
    /// recent writes). A cache that outruns the link rewrites most of a round still unsent: counted as new, the 16,000 pages it
    /// dirtied in 210 ms made 38,500 pages pending where 28,300 were (about 27,500 with this share).
    /// </summary>
    public static double NotAmongUnsentShare(in ReadinessInputs inputs)
    {
        if (inputs.WorkingSet is not { HasSetPoint: true } ws) return 1;
        double pending = Math.Max(0, inputs.PendingBytes), held = Math.Clamp(inputs.HeldBytes, 0, pending);
        double universe = ws.SetBytes - held;
        if (pending > ws.SetBytes || !(universe > 0)) return 1;
        return 1 - Math.Clamp((pending - held) / universe, 0, 1);
    }

    /// <summary>
    /// Of <paramref name="dirtied"/> bytes a guest wrote while <paramref name="held"/> bytes of held pages waited, those not
    /// among the held: a burst rewrites the held pages and others, in proportion.
    /// </summary>
    public static double NewlyDirtied(double dirtied, double held, BurstTimedWrites? bursts) =>
        held > 0 && bursts is { } b && b.BytesPerBurst > held ? dirtied * (1 - held / b.BytesPerBurst) : held > 0 ? Math.Max(0, dirtied - held) : dirtied;

    private static ReadinessEstimate Paused(in ReadinessInputs inputs, int liveRounds, TimeSpan sinceLaunch, double bytes, double pending)
    {
        TimeSpan downtime = Downtime(inputs, pending);
        return new ReadinessEstimate(Ms(sinceLaunch + downtime), Ms(downtime), (long)(bytes + pending + inputs.StateBytes), liveRounds);
    }

    private static double Ms(TimeSpan t) => t.TotalMilliseconds;
}
