using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;

namespace KvmPresync.Tests.Presync;

/// <summary>The readiness estimate runs the run's own convergence policy forward over the fluid model it documents.</summary>
public sealed class ReadinessEstimatorTests
{
    private const double Gbit = 1e9;
    private const double BytesPerMs = Gbit / 8 / 1000;

    private static ReadinessInputs Inputs(double pendingMs, double dirtyBytesPerSecond, double targetMs = 100) => new()
    {
        PendingBytes = (long)(pendingMs * BytesPerMs),
        DirtyBytesPerSecond = dirtyBytesPerSecond,
        LinkBitsPerSecond = Gbit,
        LaunchTarget = TimeSpan.FromMilliseconds(targetMs),
        Rtt = TimeSpan.FromMilliseconds(0.5),
        RoundOverhead = TimeSpan.FromMilliseconds(0.2),
        SwitchoverCost = TimeSpan.FromMilliseconds(2),
        StateBytes = 25_000, // 0.2 ms
    };

    [Fact]
    public void AQuietGuestMovesItsHeldPagesLiveThenPausesWithAlmostNothing()
    {
        // 20 ms pending; the guest dirties 2 MB/s: the live round (20.2 ms) leaves 40.4 KB (0.32 ms) → fits the 1 ms downtime test
        ReadinessEstimate e = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), Inputs(20, 2e6));
        Assert.Equal(1, e.LiveRounds);
        double left = 2e6 * 0.0202 / BytesPerMs;             // ms of link time for what was dirtied meanwhile
        double downtime = 0.2 + left + 0.2 + 0.5 + 2;        // harvest, delta, state, RTT, fixed cost
        Assert.Equal(downtime, e.DowntimeMs, 3);
        Assert.Equal(20.2 + downtime, e.LaunchToResumeMs, 3);
        Assert.False(e.GivesUp);
    }

    /// <summary>A movie: bursts of 1,000 pages (4.1 MB, 32.8 ms at the link) every 40 ms from t = 0, each over 5 ms.</summary>
    private static readonly BurstTimedWrites Frames = new(new BurstForecast(TimeSpan.FromMilliseconds(40), TimeSpan.Zero, TimeSpan.FromMilliseconds(5), 1000),
        1000 * 4096, DirtyWorkingSet.Steady(100e6));

    /// <summary>12 ms pending of which 4 ms held, counted at <paramref name="harvestMs"/> (harvest clock), launch asked at once; one phase of the bursts.</summary>
    private static ReadinessInputs AtPhase(double harvestMs) => Inputs(12, 100e6, targetMs: 50) with
    {
        Bursts = Frames, HarvestTime = TimeSpan.FromMilliseconds(harvestMs), HeldBytes = (long)(4 * BytesPerMs), BurstPhaseSpread = TimeSpan.Zero,
    };

    [Fact]
    public void WithTimedBurstsTheEstimateDependsOnWhereTheNextBurstFalls()
    {
        // at t = 10 the round (12.2 ms) ends at 22.2, long before the burst at 40: one round, then almost nothing paused
        ReadinessEstimate quiet = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), AtPhase(10));
        Assert.Equal(1, quiet.LiveRounds);
        Assert.InRange(quiet.DowntimeMs, 2.9, 3.0); // harvest, state, RTT and the fixed cost: nothing dirtied
        // at t = 31 the burst at 40 falls within the 12.2 ms round: the first round moves only the 8 ms not held (to 39.2),
        // then the burst would rewrite the held 4 ms within another round, so the guest pauses before it with those 4 ms
        ReadinessEstimate before = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), AtPhase(31));
        Assert.Equal(1, before.LiveRounds);
        Assert.Equal(quiet.DowntimeMs + 4, before.DowntimeMs, 1);
        Assert.Equal(quiet.LaunchToResumeMs, before.LaunchToResumeMs, 1); // 8.2 + 4 ms paused against 12.2 + nothing
        // without the clock the same launch expects the guest's mean rate (100 MB/s) over the round, whatever the phase
        ReadinessEstimate untimed = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), AtPhase(31) with { Bursts = null });
        Assert.Equal(untimed, ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), AtPhase(10) with { Bursts = null }));
    }

    [Fact]
    public void ABurstThatCatchesTheFirstRoundsEndAddsItsNewPagesToTheHeldOnes()
    {
        // launch at t = 34.8, the burst at 40 within the 12.2 ms round: the first round sends the 8 ms not held (to 43), when
        // the burst is 60 % written: 19.7 ms of its 32.8, of which the held 4 ms are a share. Pending is then the held pages
        // and the burst's others in proportion, 4 + 19.7 × (1 − 4 / 32.8) = 21.3 ms (the larger of the two would be 19.7).
        // Round 2 moves those (to 29.7), the burst's rest (13.1 ms) goes in round 3 (to 43.0), nothing is left to pause with.
        ReadinessEstimate e = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), AtPhase(34.8));
        Assert.Equal(3, e.LiveRounds);
        Assert.Equal(2.9, e.DowntimeMs, 1);
        Assert.Equal(8.2 + (4 + 0.6 * 32.8 * (1 - 4 / 32.8) + 0.2) + (0.4 * 32.8 + 0.2) + 2.9, e.LaunchToResumeMs, 1);
    }

    [Fact]
    public void ALiveRoundThatABurstWouldTakePastTheTargetStopsWithinItselfAndPausesWithTheRest()
    {
        // launch at t = 20 with 30 ms pending, nothing held, checked every 2 ms. Until the burst at 40 (20 ms into the round)
        // pausing at any moment ends at the same time, the rest moving paused instead of live: 37.1 ms. The burst then writes
        // its 32.8 ms over 5 ms, and the sender pauses at the first check where pausing after the next batch would end past the
        // 50 ms target (t + 2 × 2 + downtime(rest) ≥ 50), once the batch in flight is out: a check at t = 22, a pause at 24
        var inputs = Inputs(30, 100e6, targetMs: 50) with
        {
            Bursts = Frames, HarvestTime = TimeSpan.FromMilliseconds(20), BurstPhaseSpread = TimeSpan.Zero,
            StopCheckInterval = TimeSpan.FromMilliseconds(2),
        };
        double burst = 1000 * 4096 / BytesPerMs;
        double Rest(double t) => 30 - Math.Max(0, t - 0.2) + burst * Math.Clamp((t - 20) / 5, 0, 1);
        double Downtime(double t) => 0.2 + Rest(t) + 0.2 + 0.5 + 2; // harvest, the rest, state, RTT, fixed cost
        ReadinessEstimate e = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), inputs);
        Assert.Equal(22, Enumerable.Range(0, 16).Select(k => 2.0 * k).First(t => t + 4 + Downtime(t) >= 50));
        Assert.Equal(1, e.LiveRounds);
        Assert.Equal(Downtime(24), e.DowntimeMs, 3);
        Assert.Equal(24 + Downtime(24), e.LaunchToResumeMs, 3);
        // checked continuously, it pauses at the first moment (0.5 ms steps) the rest would end past the target
        ReadinessEstimate continuous = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), inputs with { StopCheckInterval = TimeSpan.Zero });
        double at = Enumerable.Range(0, 61).Select(k => 0.5 * k).First(t => t + Downtime(t) >= 50);
        Assert.Equal(at + Downtime(at), continuous.LaunchToResumeMs, 3);
        // the round's end would have come with the whole burst pending, and another round or a pause with it after that
        Assert.True(continuous.LaunchToResumeMs < 30.2 + Downtime(30.2) - 3, $"{continuous}");
    }

    [Fact]
    public void WithTimedBurstsTheEstimateIsTheMeanOverThePhaseSpread()
    {
        // a launch 9 ms before a burst sits on a knife edge: a little later and the burst falls within the first round. Over
        // ±6 ms the estimate is the mean of the seven phases, between the extremes, and equal to their mean
        ReadinessInputs edge = AtPhase(28);
        double[] single = [-6, -4, -2, 0, 2, 4, 6];
        ReadinessEstimate[] phases = single.Select(ms => ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), edge with
        {
            Bursts = Frames with { Bursts = Frames.Bursts with { Anchor = TimeSpan.FromMilliseconds(ms) } },
        })).ToArray();
        Assert.True(phases.Select(p => p.DowntimeMs).Distinct().Count() > 1, "the spread crosses the edge");
        ReadinessEstimate mean = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), edge with { BurstPhaseSpread = TimeSpan.FromMilliseconds(6) });
        Assert.Equal(phases.Average(p => p.DowntimeMs), mean.DowntimeMs, 6);
        Assert.Equal(phases.Average(p => p.LaunchToResumeMs), mean.LaunchToResumeMs, 6);
        Assert.Equal(phases[3].LiveRounds, mean.LiveRounds); // the forecast's own phase
    }

    [Fact]
    public void TheFirstRoundMovesTheRateLimitersBurstAtOnce()
    {
        // 20 ms pending, a quiet guest; 2.5 ms of it goes out with the limiter's full bucket
        ReadinessEstimate plain = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), Inputs(20, 2e6));
        ReadinessEstimate burst = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), Inputs(20, 2e6) with { LinkBurstBytes = (long)(2.5 * BytesPerMs) });
        Assert.Equal(plain.LaunchToResumeMs - 2.5, burst.LaunchToResumeMs, 1);
        // compressed pages go with the burst no faster than they are compressed: at 133.3 MB/s the 2.5 MB take 18.75 ms, not
        // the link's 17.5 ms after the burst; the guest dirties 2.5 KB (0.02 ms) more during the longer round. A compressor
        // faster than the link changes nothing
        ReadinessEstimate slowCompressor = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), Inputs(20, 2e6) with
        {
            LinkBurstBytes = (long)(2.5 * BytesPerMs), CompressBytesPerSecond = 2.5e6 / 0.01875,
        });
        Assert.Equal(1, slowCompressor.LiveRounds);
        Assert.Equal(burst.LaunchToResumeMs + 1.25 + 0.02, slowCompressor.LaunchToResumeMs, 3);
        ReadinessEstimate fastCompressor = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), Inputs(20, 2e6) with
        {
            LinkBurstBytes = (long)(2.5 * BytesPerMs), CompressBytesPerSecond = 1e9,
        });
        Assert.Equal(burst.LaunchToResumeMs, fastCompressor.LaunchToResumeMs, 3);
    }

    [Fact]
    public void AGuestSlowerThanTheLinkGetsOneLiveRoundThenPauses()
    {
        // 40 ms pending at a 50 ms target: the first live round (40.2 ms) runs; the guest dirtied 80 MB/s meanwhile (3.2 MB,
        // less than 0.8 × the 5 MB it moved), another round would end past the target: pause with that
        ReadinessEstimate e = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), Inputs(40, 80e6, targetMs: 50));
        Assert.Equal(1, e.LiveRounds);
        double left = 80e6 * 0.0402 / BytesPerMs;
        Assert.Equal(0.2 + left + 0.2 + 0.5 + 2, e.DowntimeMs, 3);
        Assert.Equal(40.2 + e.DowntimeMs, e.LaunchToResumeMs, 3);
    }

    [Fact]
    public void APausedDeltaTheCpuBoundsMovesAtTheLiveRateScaledByTheCpuTheGuestGivesBack()
    {
        // live rounds moved pages at 600 Mbit/s on 2 CPUs while the guest's vCPU used half of one: paused, the same work has
        // 2 CPUs instead of 1.5 — 800 Mbit/s, below the link's 1 Gbit/s
        Assert.Equal(800e6, ReadinessEstimator.PausedRate(600e6, Gbit, guestCpus: 0.5, hostCpus: 2), 3);
        // never past the link; the link's rate when the live rounds reached it, or when the guest's CPU use is unknown
        Assert.Equal(Gbit, ReadinessEstimator.PausedRate(900e6, Gbit, guestCpus: 0.5, hostCpus: 2));
        Assert.Equal(Gbit, ReadinessEstimator.PausedRate(Gbit, Gbit, guestCpus: 0.5, hostCpus: 2));
        Assert.Equal(Gbit, ReadinessEstimator.PausedRate(null, Gbit, guestCpus: 0.5, hostCpus: 2));
        Assert.Equal(Gbit, ReadinessEstimator.PausedRate(600e6, Gbit, guestCpus: null, hostCpus: 2));
        // an idle guest gives nothing back: the live rate
        Assert.Equal(600e6, ReadinessEstimator.PausedRate(600e6, Gbit, guestCpus: 0, hostCpus: 2), 3);
        // a guest that used (nearly) every CPU: capped at 90 % of them, so the rate stays finite (here the link's)
        Assert.Equal(Gbit, ReadinessEstimator.PausedRate(300e6, Gbit, guestCpus: 5, hostCpus: 2));
        Assert.Equal(500e6, ReadinessEstimator.PausedRate(50e6, Gbit, guestCpus: 2, hostCpus: 2), 3);

        // a cache that outruns the link pauses at once with 40 ms of link pending: at 800 Mbit/s the delta and the state
        // take 1.25 times as long
        ReadinessInputs cache = Inputs(40, 150e6, targetMs: 50);
        ReadinessEstimate atLink = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), cache);
        ReadinessEstimate cpuBound = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), cache with { PausedTransferBitsPerSecond = 800e6 });
        Assert.Equal(0, cpuBound.LiveRounds);
        Assert.Equal(atLink.DowntimeMs + (40 + 0.2) * 0.25, cpuBound.DowntimeMs, 3);
        Assert.Equal(cpuBound.DowntimeMs, cpuBound.LaunchToResumeMs, 3);
        // a paused rate above the link's (a better codec paused) shortens the delta: twice the rate, half the bytes' time
        ReadinessEstimate faster = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), cache with { PausedTransferBitsPerSecond = 2 * Gbit });
        Assert.Equal(atLink.DowntimeMs - (40 + 0.2) / 2, faster.DowntimeMs, 3);
        // the link's rate at the paused rate
        Assert.Equal(atLink, ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), cache with { PausedTransferBitsPerSecond = Gbit }));
    }

    [Fact]
    public void APausedDeltaMovesAtTheLinkTimesTheSpeedUpOfTheCodecThatWinsPausedBoundedByTheFreedCpu()
    {
        // the CPU the migration gets when the guest pauses: P / (P − g), g at most 90 % of P; 1 when unknown
        Assert.Equal(2 / 1.5, ReadinessEstimator.CpuFreedScale(0.5, 2), 9);
        Assert.Equal(1, ReadinessEstimator.CpuFreedScale(null, 2));
        Assert.Equal(1, ReadinessEstimator.CpuFreedScale(double.NaN, 2));
        Assert.Equal(10, ReadinessEstimator.CpuFreedScale(7, 2), 9);
        // zstd loses beside the running guest and wins paused: the link's side of the paused pace is 1.6 Gbit/s where the
        // live rounds' codec gave 1 Gbit/s. Live rounds at the link: the CPU did not bound them, so the paused codec's link pace
        Assert.Equal(1.6e9, ReadinessEstimator.PausedRate(Gbit, Gbit, guestCpus: 0.5, hostCpus: 2, pausedLinkBitsPerSecond: 1.6e9));
        // live rounds the CPU bounded at 600 Mbit/s: 800 Mbit/s paused, below either link pace
        Assert.Equal(800e6, ReadinessEstimator.PausedRate(600e6, Gbit, guestCpus: 0.5, hostCpus: 2, pausedLinkBitsPerSecond: 1.6e9), 3);
        // at 1,500 Mbit/s live the freed CPU would carry 2 Gbit/s: the paused codec's 1.6 bounds it
        Assert.Equal(1.6e9, ReadinessEstimator.PausedRate(1.5e9, 2e9, guestCpus: 0.5, hostCpus: 2, pausedLinkBitsPerSecond: 1.6e9), 3);
        // without the guest's share, the paused codec's link pace; a pace that is not a rate is ignored
        Assert.Equal(1.6e9, ReadinessEstimator.PausedRate(600e6, Gbit, guestCpus: null, hostCpus: 2, pausedLinkBitsPerSecond: 1.6e9));
        Assert.Equal(800e6, ReadinessEstimator.PausedRate(600e6, Gbit, guestCpus: 0.5, hostCpus: 2, pausedLinkBitsPerSecond: double.NaN), 3);
    }

    [Fact]
    public void AGuestFasterThanTheLinkPausesAtOnce()
    {
        // at 150 MB/s the guest would dirty 6 MB while the first live round moves the 5 MB pending: the round would only put
        // its 40.2 ms before a larger pause, so the estimate is a stop-and-copy of what is pending
        ReadinessEstimate e = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), Inputs(40, 150e6, targetMs: 50));
        Assert.Equal(0, e.LiveRounds);
        Assert.Equal(0.2 + 40 + 0.2 + 0.5 + 2, e.DowntimeMs, 3);
        Assert.Equal(e.DowntimeMs, e.LaunchToResumeMs, 3);
    }

    [Fact]
    public void LiveRoundsMoveAtTheMeasuredRateAndTheGuestDirtiesAlongItsWorkingSetCurve()
    {
        // 30 ms of link pending, but with the guest running pages leave at half the link rate (the CPU bounds the send);
        // the guest rewrites pages often: 100 MB/s distinct within 20 ms, 30 MB/s within a 100 ms round
        var curve = new DirtyWorkingSet(30e6, TimeSpan.FromMilliseconds(100), 100e6, TimeSpan.FromMilliseconds(20));
        ReadinessInputs inputs = Inputs(30, 30e6, targetMs: 90) with { WorkingSet = curve, LiveTransferBitsPerSecond = Gbit / 2 };
        ReadinessEstimate e = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), inputs);
        Assert.Equal(1, e.LiveRounds);
        double live = 0.2 + 60;                                       // 3.75 MB at 62.5 MB/s
        double dirtied = 2e6 + (3e6 - 2e6) * (live - 20) / (100 - 20); // bytes: the curve between its two points
        Assert.Equal(dirtied, curve.BytesWithin(TimeSpan.FromMilliseconds(live)), 0);
        // another round (2.5 MB, then the 2 MB the curve gives within it) would end past the 90 ms target: pause; the paused
        // delta moves at the link rate (the guest no longer runs)
        Assert.Equal(0.2 + (dirtied + 25_000) / BytesPerMs + 0.5 + 2, e.DowntimeMs, 3);
        Assert.Equal(live + e.DowntimeMs, e.LaunchToResumeMs, 3);
        // without the curve and the measured rate the same guest looks far easier
        ReadinessEstimate naive = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), Inputs(30, 30e6, targetMs: 90));
        Assert.True(naive.LaunchToResumeMs < e.LaunchToResumeMs - 20);
    }

    [Fact]
    public void APolicyThatWouldGiveUpIsReportedAsSuch()
    {
        var strict = new DowntimeTargetConvergence { MaxLiveDuration = TimeSpan.Zero, MaxDowntime = TimeSpan.FromMilliseconds(5) };
        Assert.True(ReadinessEstimator.Estimate(strict, Inputs(40, 150e6)).GivesUp);
    }

    [Fact]
    public void ItFollowsTheLaunchTarget()
    {
        // the same guest and pending set: a tighter target pauses sooner, trading downtime for launch time
        ReadinessEstimate loose = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), Inputs(30, 60e6, targetMs: 200));
        ReadinessEstimate tight = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), Inputs(30, 60e6, targetMs: 35));
        Assert.True(loose.LiveRounds > tight.LiveRounds);
        Assert.True(tight.LaunchToResumeMs < loose.LaunchToResumeMs);
        Assert.True(tight.DowntimeMs > loose.DowntimeMs);
    }

    [Fact]
    public void LaunchingLaterFindsWhatBecamePendingSinceTheHarvest()
    {
        // 40 ms after the harvest, 25/80 of what the guest dirties (80 MB/s) is newly pending: 1 MB (8 ms of link) more to
        // move in the first live round, and 0.64 MB (5.12 ms) more dirtied during that longer round, moved paused
        ReadinessInputs at = Inputs(40, 80e6, targetMs: 50) with { NewlyPendingBytesPerSecond = 25e6 };
        ReadinessEstimate now = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), at);
        ReadinessEstimate later = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), at with { SinceHarvest = TimeSpan.FromMilliseconds(40) });
        Assert.Equal(1, later.LiveRounds);
        Assert.Equal(now.DowntimeMs + 5.12, later.DowntimeMs, 3);
        Assert.Equal(now.LaunchToResumeMs + 8 + 5.12, later.LaunchToResumeMs, 3);
        Assert.Equal(now.Bytes + 1_000_000 + 640_000, later.Bytes, 1.0);
    }

    [Fact]
    public void ALookAtTheDirtyLogReplacesTheGuessOfWhatTheGuestDirtiedSinceTheHarvest()
    {
        // 40 ms after the harvest the model guesses 3.2 MB dirtied (80 MB/s), 25/80 of it newly pending; the burst clock's
        // last look counted 1.6 MB, so 25/80 of that: 0.5 MB (4 ms of link) more in the first live round, not 1 MB (8 ms)
        ReadinessInputs later = Inputs(40, 80e6, targetMs: 50) with { NewlyPendingBytesPerSecond = 25e6, SinceHarvest = TimeSpan.FromMilliseconds(40) };
        ReadinessEstimate guessed = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), later);
        ReadinessEstimate looked = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), later with { DirtiedSinceHarvestBytes = 1.6e6 });
        ReadinessEstimate now = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), later with { SinceHarvest = TimeSpan.Zero });
        Assert.Equal(now.Bytes + 500_000 + 320_000, looked.Bytes, 1.0); // and what the guest dirtied during 4 ms more of live round
        Assert.Equal(guessed.LaunchToResumeMs - 4 - 2.56, looked.LaunchToResumeMs, 3);
        // a look that saw nothing: the launch finds only what was pending, whatever the time since the harvest
        Assert.Equal(now, ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), later with { DirtiedSinceHarvestBytes = 0 }));
    }

    [Fact]
    public void PagesTheGuestRewritesWhileStillUnsentAreNotCountedTwice()
    {
        // a cache outrunning the link: a working set of 120 MB over many rounds, 10 MB of it held, 88 MB pending unsent
        // (98 MB with the held) 200 ms into a send; the look counted 64 MB dirtied since the harvest, 90 % newly pending.
        // Evenly over the 110 MB of the set outside the held pages, 88/110 of those fall among the unsent: 0.9 × 0.2 × 64 MB
        // = 11.52 MB is new, not 57.6 MB
        var set = new DirtyWorkingSet(200e6, TimeSpan.FromMilliseconds(500), SetBytes: 120e6, SetWindow: TimeSpan.FromSeconds(8));
        ReadinessInputs atLaunch = Inputs(98e6 / BytesPerMs, 200e6) with
        {
            HeldBytes = 10_000_000, WorkingSet = set, NewlyPendingBytesPerSecond = 180e6,
            SinceHarvest = TimeSpan.FromMilliseconds(200), DirtiedSinceHarvestBytes = 64e6,
        };
        Assert.Equal(0.2, ReadinessEstimator.NotAmongUnsentShare(atLaunch), 9);
        ReadinessEstimate e = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), atLaunch);
        Assert.Equal(0, e.LiveRounds); // the guest outruns the link: pause at once
        Assert.Equal(98e6 + 11.52e6 + 25_000, e.Bytes, 1.0);
        // nothing unsent but the held pages (the round's send is over): the newly pending share alone
        Assert.Equal(1, ReadinessEstimator.NotAmongUnsentShare(atLaunch with { PendingBytes = 10_000_000 }));
        // more pending than the working set holds (the initial copy's pages), or no set point: nothing assumed to overlap
        Assert.Equal(1, ReadinessEstimator.NotAmongUnsentShare(atLaunch with { PendingBytes = 130_000_000 }));
        Assert.Equal(1, ReadinessEstimator.NotAmongUnsentShare(atLaunch with { WorkingSet = DirtyWorkingSet.Steady(200e6) }));
    }
}
