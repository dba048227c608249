using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Memory;

namespace KvmPresync.Tests.Presync;

/// <summary>The default convergence policy's rules, the launch target's budget and the dirty-rate meter the policy reads.</summary>
public sealed class ConvergencePolicyTests
{
    private const double Gbit = 1e9;
    private const double BytesPerMs = Gbit / 8 / 1000; // 125,000

    private static ConvergenceInput Input(double pendingMs, double? previousMs = null, double dirtyBytesPerSecond = 0, double sinceLaunchMs = 0,
        double targetMs = 100, double meanDirty = 0, double? waitedMs = null) => new()
    {
        PendingBytes = (long)(pendingMs * BytesPerMs),
        PreviousPendingBytes = previousMs is { } p ? (long)(p * BytesPerMs) : null,
        DirtyBytesPerSecond = dirtyBytesPerSecond,
        MeanDirtyBytesPerSecond = meanDirty,
        WaitingForQuietFor = waitedMs is { } w ? TimeSpan.FromMilliseconds(w) : null,
        LinkBitsPerSecond = Gbit,
        SinceLaunch = TimeSpan.FromMilliseconds(sinceLaunchMs),
        LaunchTarget = TimeSpan.FromMilliseconds(targetMs),
        LiveRounds = 0,
    };

    private static readonly DowntimeTargetConvergence Policy = new();

    [Fact]
    public void PausesOnceWhatIsPendingMovesWithinTheDowntimeTarget()
    {
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.Pause, ConvergenceReason.FitsDowntimeTarget), Policy.Decide(Input(0.9)));
        Assert.Equal(ConvergenceAction.ContinueLive, Policy.Decide(Input(1.5)).Action); // 20 ms was the old test: now sent live first
    }

    [Fact]
    public void CopiesTheHeldPagesLiveWhenThatStillMeetsTheLaunchTarget()
    {
        // 18 ms pending, a quiet guest: one live round, then a near-empty pause
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.ContinueLive, ConvergenceReason.FirstLiveRound), Policy.Decide(Input(18, dirtyBytesPerSecond: 1e6)));
        // the delta shrank: another round pays
        Assert.Equal(ConvergenceReason.Shrinking, Policy.Decide(Input(5, previousMs: 18, sinceLaunchMs: 20)).Reason);
        Assert.Equal(ConvergenceReason.NotShrinking, Policy.Decide(Input(17, previousMs: 18, sinceLaunchMs: 20)).Reason);
    }

    [Fact]
    public void PausesWhenAnotherLiveRoundWouldEndPastTheLaunchTarget()
    {
        // 40 ms pending after a first live round, the guest dirties faster than the link: 40 + 40 ms > 50 ms target
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.Pause, ConvergenceReason.LaunchTargetReached),
            Policy.Decide(Input(40, previousMs: 45, dirtyBytesPerSecond: 150e6, targetMs: 50)));
        // the same at a 200 ms target: another live round
        Assert.Equal(ConvergenceAction.ContinueLive, Policy.Decide(Input(40, previousMs: 60, dirtyBytesPerSecond: 150e6, targetMs: 200)).Action);
        // late after launch even a quiet guest's round would end past the target
        Assert.Equal(ConvergenceReason.LaunchTargetReached, Policy.Decide(Input(10, previousMs: 40, sinceLaunchMs: 95)).Reason);
    }

    [Fact]
    public void TheFirstDecisionCopiesALiveRoundEvenPastTheLaunchTarget()
    {
        // pausing at the first decision would be a stop-and-copy of all the guest dirtied since the last sync round
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.ContinueLive, ConvergenceReason.FirstLiveRound),
            Policy.Decide(Input(40, dirtyBytesPerSecond: 50e6, targetMs: 30)));
        // ... unless the guest outruns the link: at 150 MB/s it dirties 6 MB while the round moves the 5 MB pending, and the
        // round would only put its own 40 ms before the same pause
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.Pause, ConvergenceReason.NotShrinking),
            Policy.Decide(Input(40, dirtyBytesPerSecond: 150e6, targetMs: 50)));
        Assert.Equal(ConvergenceReason.FirstLiveRound, Policy.Decide(Input(40, dirtyBytesPerSecond: 90e6, targetMs: 50)).Reason); // 3.6 MB: < 0.8 × 5
        // a round that would end past the target (40 ms > 30) must at least halve what is pending: 3.6 MB left does not
        Assert.Equal(ConvergenceReason.NotShrinking, Policy.Decide(Input(40, dirtyBytesPerSecond: 90e6, targetMs: 30)).Reason);
        // ... unless it fits the downtime target, or live copying may not run at all
        Assert.Equal(ConvergenceReason.FitsDowntimeTarget, Policy.Decide(Input(0.5, dirtyBytesPerSecond: 150e6, targetMs: 50)).Reason);
        Assert.Equal(ConvergenceReason.LiveTimeUp, new DowntimeTargetConvergence { MaxLiveDuration = TimeSpan.Zero }.Decide(Input(40, targetMs: 50)).Reason);
    }

    [Fact]
    public void ExpectsWhatTheGuestDirtiesFromItsWorkingSetCurveWhenMeasured()
    {
        // 20 ms pending after a burst: the last interval's rate (1 GB/s) says the next round brings as much again (pause),
        // the working-set curve (a 20 ms window holds 1 ms of link time) says it brings little: another live round
        ConvergenceInput burst = Input(20, previousMs: 30, dirtyBytesPerSecond: 1e9, sinceLaunchMs: 20, targetMs: 50);
        Assert.Equal(ConvergenceReason.LaunchTargetReached, Policy.Decide(burst).Reason);
        var curve = new DirtyWorkingSet(LongBytesPerSecond: 10e6, LongWindow: TimeSpan.FromMilliseconds(100), ShortBytesPerSecond: 6.25e6, ShortWindow: TimeSpan.FromMilliseconds(20));
        Assert.Equal(125_000, (burst with { WorkingSet = curve }).ExpectedDirtyBytes(TimeSpan.FromMilliseconds(20)), 3);
        Assert.Equal(ConvergenceReason.Shrinking, Policy.Decide(burst with { WorkingSet = curve }).Reason);
        // a curve without its short point is not used: the last interval's rate is
        Assert.Equal(ConvergenceReason.LaunchTargetReached, Policy.Decide(burst with { WorkingSet = DirtyWorkingSet.Steady(1e3) }).Reason);
    }

    [Fact]
    public void TheLiveTimeLimitStillPausesOrGivesUp()
    {
        Assert.Equal(ConvergenceReason.LiveTimeUp, Policy.Decide(Input(50, previousMs: 10, sinceLaunchMs: 300, targetMs: 1000)).Reason);
        var strict = new DowntimeTargetConvergence { MaxDowntime = TimeSpan.FromMilliseconds(10) };
        Assert.Equal(ConvergenceAction.GiveUp, strict.Decide(Input(50, previousMs: 10, sinceLaunchMs: 300, targetMs: 1000)).Action);
    }

    [Fact]
    public void WaitsForTheQuietAfterABurstWithinTheWaitAndTheTarget()
    {
        var quiet = new DowntimeTargetConvergence { QuietWait = TimeSpan.FromMilliseconds(40) };
        // about to pause (not shrinking) in a burst: 4x the usual rate
        ConvergenceInput burst = Input(10, previousMs: 11, dirtyBytesPerSecond: 400e6, sinceLaunchMs: 20, targetMs: 100, meanDirty: 100e6);
        Assert.Equal(ConvergenceReason.NotShrinking, Policy.Decide(burst).Reason);
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.ContinueLive, ConvergenceReason.WaitingForQuiet), quiet.Decide(burst));
        // the burst is over: pause now
        Assert.Equal(ConvergenceAction.Pause, quiet.Decide(burst with { DirtyBytesPerSecond = 5e6 }).Action);
        // waited one period already, or the round would end past the target: pause
        Assert.Equal(ConvergenceAction.Pause, quiet.Decide(burst with { WaitingForQuietFor = TimeSpan.FromMilliseconds(40) }).Action);
        Assert.Equal(ConvergenceAction.Pause, quiet.Decide(burst with { SinceLaunch = TimeSpan.FromMilliseconds(95) }).Action);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DowntimeTargetConvergence { QuietWait = TimeSpan.Zero });
    }

    /// <summary>A movie's bursts as the burst clock gives them: 2,000 pages (8 MB, 64 ms at the link) every 40 ms from t = 100 ms, each over 10 ms.</summary>
    private static BurstTimedWrites Frames(double pagesPerBurst = 2000) =>
        new(new BurstForecast(TimeSpan.FromMilliseconds(40), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(10), (long)pagesPerBurst),
            pagesPerBurst * 4096, DirtyWorkingSet.Steady(100e6));

    private static ConvergenceInput Timed(ConvergenceInput input, double nowMs, int liveRounds = 1) =>
        input with { Bursts = Frames(), Now = TimeSpan.FromMilliseconds(nowMs), LiveRounds = liveRounds };

    [Fact]
    public void TimedBurstsSendALiveRoundThatFallsBetweenBursts()
    {
        // 20 ms pending at t = 112 (the burst at 100 is over, the next at 140): the round ends at 132, before it
        // (a round that stops within itself at the last moment that meets the target, should it get there)
        ConvergenceInput quiet = Timed(Input(20, previousMs: 30, sinceLaunchMs: 40, targetMs: 70), nowMs: 112);
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.ContinueLive, ConvergenceReason.QuietAhead) { StopAtTarget = true }, Policy.Decide(quiet));
        // at t = 125 the next burst falls within the round and would dirty more than it moves: pause before it
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.Pause, ConvergenceReason.BurstAhead),
            Policy.Decide(Timed(Input(20, previousMs: 30, sinceLaunchMs: 40, targetMs: 70), nowMs: 125)));
        // a quiet round that would end past the target pauses, with the clock too: launch-to-resume stays near the target
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.Pause, ConvergenceReason.LaunchTargetReached),
            Policy.Decide(Timed(Input(20, previousMs: 30, sinceLaunchMs: 40, targetMs: 50), nowMs: 112)));
        // a round that would start past the target follows the rules without the clock (no chasing a guest off its beat)
        Assert.Equal(ConvergenceReason.LaunchTargetReached, Policy.Decide(Timed(Input(20, previousMs: 30, sinceLaunchMs: 55, targetMs: 50), nowMs: 112)).Reason);
        // what fits the downtime target pauses whatever comes next
        Assert.Equal(ConvergenceReason.FitsDowntimeTarget, Policy.Decide(Timed(Input(0.5, previousMs: 30, sinceLaunchMs: 40), nowMs: 139)).Reason);
        // without the clock no round stops within itself (the rules at a round's end keep to the target there)
        Assert.False(Policy.Decide(Input(20, previousMs: 30, sinceLaunchMs: 10, targetMs: 70)).StopAtTarget);
    }

    [Fact]
    public void TimedBurstsALiveRoundLastsWhatTheLiveRateTakesNotTheLinks()
    {
        // 20 ms pending at the link rate; the sender measured 0.6 Gbit/s with the guest running: the round lasts 33 ms
        ConvergenceInput slow = Timed(Input(20, previousMs: 30, sinceLaunchMs: 40, targetMs: 100), nowMs: 112) with { LiveTransferBitsPerSecond = 0.6 * Gbit };
        Assert.Equal(33.3, slow.LiveRoundTime.TotalMilliseconds, 1);
        // at the link rate it would end at 132, before the burst at 140 (QuietAhead); at the live rate it runs 5 ms into it
        Assert.Equal(ConvergenceReason.QuietAhead, Policy.Decide(slow with { LiveTransferBitsPerSecond = null }).Reason);
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.Pause, ConvergenceReason.BurstAhead), Policy.Decide(slow));
        // a quiet round (t = 151, the next burst at 180) that meets the target at the link rate (50 + 20 = 70 ms) but not at
        // the live rate (0.8 Gbit/s: 50 + 25 ms)
        ConvergenceInput quiet = Timed(Input(20, previousMs: 30, sinceLaunchMs: 50, targetMs: 70), nowMs: 151);
        Assert.Equal(ConvergenceReason.QuietAhead, Policy.Decide(quiet).Reason);
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.Pause, ConvergenceReason.LaunchTargetReached),
            Policy.Decide(quiet with { LiveTransferBitsPerSecond = 0.8 * Gbit }));
        // a measured rate above the link's is the link's (the measure is of what moved, not of what could)
        Assert.Equal(quiet.PendingTransferTime, (quiet with { LiveTransferBitsPerSecond = 2 * Gbit }).LiveRoundTime);
    }

    [Fact]
    public void TimedBurstsADeltaThatDoesNotShrinkBetweenBurstsPausesFromTheThirdRound()
    {
        // the trickle between frames: 3 ms pending after 3.5 ms, nothing forecast before the burst at 140
        ConvergenceInput trickle = Timed(Input(3, previousMs: 3.5, sinceLaunchMs: 30, targetMs: 100), nowMs: 112, liveRounds: 2);
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.Pause, ConvergenceReason.NotShrinking), Policy.Decide(trickle));
        Assert.Equal(ConvergenceReason.QuietAhead, Policy.Decide(trickle with { PendingBytes = (long)(2 * BytesPerMs) }).Reason); // shrinking
        // after the first round the delta may be the held pages that round left on purpose: another round
        Assert.Equal(ConvergenceReason.QuietAhead, Policy.Decide(trickle with { LiveRounds = 1 }).Reason);
    }

    [Fact]
    public void TimedBurstsTheFirstRoundLeavesTheHeldPagesWhenABurstFallsWithinIt()
    {
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.ContinueLive, ConvergenceReason.SendingBeforeBurst) { StopAtTarget = true },
            Policy.Decide(Timed(Input(30), nowMs: 112, liveRounds: 0))); // 112 → 142: the burst at 140
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.ContinueLive, ConvergenceReason.FirstLiveRound) { StopAtTarget = true },
            Policy.Decide(Timed(Input(20), nowMs: 112, liveRounds: 0))); // 112 → 132: quiet
    }

    [Fact]
    public void TheHoldBudgetIsTheLinksBytesInMostOfTheLaunchTarget()
    {
        Assert.Equal(10_000_000, LaunchBudget.ForTarget(Gbit, TimeSpan.FromMilliseconds(100)).Bytes);
        Assert.Equal(5_000_000, new SyncEngine(1024, 4096, new SyncEngineOptions { LaunchTarget = TimeSpan.FromMilliseconds(50) }).Budget.Bytes);
        Assert.Throws<ArgumentOutOfRangeException>(() => LaunchBudget.ForTarget(Gbit, TimeSpan.FromMilliseconds(-1)));
    }

    [Fact]
    public void TheWorkingSetCurveRunsThroughItsTwoMeasuredPoints()
    {
        var curve = new DirtyWorkingSet(LongBytesPerSecond: 30e6, LongWindow: TimeSpan.FromMilliseconds(100), ShortBytesPerSecond: 100e6, ShortWindow: TimeSpan.FromMilliseconds(20));
        Assert.Equal(1e6, curve.BytesWithin(TimeSpan.FromMilliseconds(10)), 3);   // through the origin up to the short window
        Assert.Equal(2e6, curve.BytesWithin(TimeSpan.FromMilliseconds(20)), 3);
        Assert.Equal(2.5e6, curve.BytesWithin(TimeSpan.FromMilliseconds(60)), 3); // between the points
        Assert.Equal(3e6, curve.BytesWithin(TimeSpan.FromMilliseconds(100)), 3);
        Assert.Equal(6e6, curve.BytesWithin(TimeSpan.FromMilliseconds(200)), 3);  // the long rate beyond the round
        Assert.Equal(0, curve.BytesWithin(TimeSpan.Zero));
        // a short window that saw more than the whole round did: never fewer pages in a longer window
        var odd = curve with { ShortBytesPerSecond = 200e6 };
        Assert.Equal(4e6, odd.BytesWithin(TimeSpan.FromMilliseconds(60)), 3);
        // without a short point: one rate at every scale
        Assert.False(DirtyWorkingSet.Steady(30e6).HasShortWindow);
        Assert.Equal(0.3e6, DirtyWorkingSet.Steady(30e6).BytesWithin(TimeSpan.FromMilliseconds(10)), 3);
    }

    [Fact]
    public void TheWorkingSetCurveBendsTowardsWhatTheGuestDirtiedOverManyRounds()
    {
        // a cache rewriting the same items: 10 MB distinct per 100 ms round, 20 MB over 16 rounds (1.6 s)
        var cache = new DirtyWorkingSet(LongBytesPerSecond: 100e6, LongWindow: TimeSpan.FromMilliseconds(100), SetBytes: 20e6, SetWindow: TimeSpan.FromMilliseconds(1600));
        Assert.True(cache.HasSetPoint);
        Assert.Equal(5e6, cache.BytesWithin(TimeSpan.FromMilliseconds(50)), 3);    // the round's rate within a round
        Assert.Equal(15e6, cache.BytesWithin(TimeSpan.FromMilliseconds(850)), 3);  // between the round and the set, not 85 MB
        Assert.Equal(20e6, cache.BytesWithin(TimeSpan.FromMilliseconds(1600)), 3);
        Assert.Equal(30e6, cache.BytesWithin(TimeSpan.FromMilliseconds(3100)), 3); // beyond it, at the last segment's slope
        // with a short point too: the short segments below the round are as before
        var both = cache with { ShortBytesPerSecond = 300e6, ShortWindow = TimeSpan.FromMilliseconds(20) };
        Assert.Equal(3e6, both.BytesWithin(TimeSpan.FromMilliseconds(10)), 3);
        Assert.Equal(15e6, both.BytesWithin(TimeSpan.FromMilliseconds(850)), 3);
        // a guest writing fresh pages all the time dirtied 16 rounds' worth: the curve is its rate throughout, as without the point
        var fresh = cache with { SetBytes = 160e6 };
        Assert.Equal(85e6, fresh.BytesWithin(TimeSpan.FromMilliseconds(850)), 3);
        Assert.Equal(85e6, (cache with { SetBytes = 0 }).BytesWithin(TimeSpan.FromMilliseconds(850)), 3);
        // a set smaller than one round's (counted over fewer rounds than the window) never takes the curve below the round's
        Assert.Equal(10e6, (cache with { SetBytes = 5e6 }).BytesWithin(TimeSpan.FromMilliseconds(850)), 3);
        Assert.False((cache with { SetWindow = TimeSpan.FromMilliseconds(100) }).HasSetPoint);
    }

    [Fact]
    public void TheEnginesWorkingSetHasThePredictorsActivePagesOverItsHistory()
    {
        // a guest that dirties the same 100 pages every 100 ms round
        var engine = new SyncEngine(1024, 4096, new SyncEngineOptions { LinkBitsPerSecond = Gbit });
        var send = new DirtyBitmap(1024);
        for (int round = 0; round <= 20; round++)
        {
            var harvest = new DirtyBitmap(1024);
            for (int p = 0; p < 100; p++) harvest.Set(p);
            engine.PlanSyncRound(harvest, new DirtyHarvest(TimeSpan.FromMilliseconds(100 * round), 100), send);
        }
        DirtyWorkingSet curve = engine.WorkingSet;
        long pageBytes = engine.Cost.FullPageBytes;
        Assert.True(curve.HasSetPoint);
        Assert.Equal(100 * pageBytes, curve.SetBytes, 3);
        Assert.Equal(TimeSpan.FromMilliseconds(100 * ChangePredictor.HistoryRounds), curve.SetWindow);
        // what it dirties in a second is the same 100 pages, not ten rounds' worth
        Assert.Equal(100 * pageBytes, curve.BytesWithin(TimeSpan.FromSeconds(1)), 3);
        Assert.Equal(1000 * pageBytes, engine.DirtyRate.WorkingSet.BytesWithin(TimeSpan.FromSeconds(1)), 3);
        // without a predictor (the slowstart policy) the curve is the dirty rate's
        var plain = new SyncEngine(1024, 4096, new SyncEngineOptions { LinkBitsPerSecond = Gbit, Policy = SyncPolicy.SlowStart });
        Assert.False(plain.WorkingSet.HasSetPoint);
    }

    [Fact]
    public void TheDirtyRateMeterKeepsTheShortWindowsRateBesideTheRoundsRate()
    {
        var meter = new DirtyRateMeter(4096);
        Assert.False(meter.WorkingSet.HasShortWindow);
        meter.Note(new DirtyHarvest(TimeSpan.FromMilliseconds(0), 0));
        meter.Note(new DirtyHarvest(TimeSpan.FromMilliseconds(100), 1000));
        meter.NoteShortWindow(TimeSpan.FromMilliseconds(20), 600);
        DirtyWorkingSet curve = meter.WorkingSet;
        Assert.True(curve.HasShortWindow);
        Assert.Equal(TimeSpan.FromMilliseconds(100), curve.LongWindow);
        Assert.Equal(1000 * 4096 / 0.1, curve.LongBytesPerSecond, 3);
        Assert.Equal(600 * 4096 / 0.02, curve.ShortBytesPerSecond, 3);
        meter.NoteShortWindow(TimeSpan.FromMilliseconds(20), 0);
        double w = 2.0 / (DirtyRateMeter.Rounds + 1);
        Assert.Equal(600 * 4096 / 0.02 * (1 - w), meter.MeanShortBytesPerSecond, 3);
    }

    [Fact]
    public void TheSendRateCountsOnlyLargeRoundsAndDecays()
    {
        var meter = new SendRateMeter();
        meter.Note(SendRateMeter.MinRoundBytes - 1, TimeSpan.FromMilliseconds(1));
        Assert.Null(meter.BytesPerSecond); // a small round measures its fixed costs, not the rate
        meter.Note(10_000_000, TimeSpan.FromMilliseconds(100));
        Assert.Equal(100e6, meter.BytesPerSecond!.Value, 3);
        meter.Note(10_000_000, TimeSpan.FromMilliseconds(50));
        Assert.Equal((10e6 * 0.8 + 10e6) / (0.1 * 0.8 + 0.05), meter.BytesPerSecond!.Value, 3);
        // the engine's live transfer rate is the measured one only where it is below the link rate times the speed-up
        var engine = new SyncEngine(1024, 4096, new SyncEngineOptions { LinkBitsPerSecond = Gbit });
        Assert.Equal(Gbit, engine.LiveTransferBitsPerSecond);
        engine.SendRate.Note(10_000_000, TimeSpan.FromMilliseconds(200)); // 50 MB/s = 0.4 Gbit/s
        Assert.Equal(0.4e9, engine.LiveTransferBitsPerSecond, 0);
        Assert.Equal(Gbit, engine.EffectiveLinkBitsPerSecond); // what the policy is told is unchanged
    }

    [Fact]
    public void TheDirtyRateMeterReadsRatesFromHarvestTimes()
    {
        var meter = new DirtyRateMeter(4096);
        meter.Note(new DirtyHarvest(TimeSpan.FromMilliseconds(0), 500));
        Assert.Equal(0, meter.MeanBytesPerSecond); // one harvest is no interval
        meter.Note(new DirtyHarvest(TimeSpan.FromMilliseconds(100), 100));
        Assert.Equal(100 * 4096 / 0.1, meter.LastBytesPerSecond, 6);
        Assert.Equal(meter.LastBytesPerSecond, meter.MeanBytesPerSecond, 6);
        meter.Note(new DirtyHarvest(TimeSpan.FromMilliseconds(200), 1100));
        Assert.Equal(1100 * 4096 / 0.1, meter.LastBytesPerSecond, 6);
        double w = 2.0 / (DirtyRateMeter.Rounds + 1);
        Assert.Equal(100 * 4096 / 0.1 * (1 - w) + 1100 * 4096 / 0.1 * w, meter.MeanBytesPerSecond, 3);
    }
}
