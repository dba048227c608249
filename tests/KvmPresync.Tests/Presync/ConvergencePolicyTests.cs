using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;

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
        // 40 ms pending, the guest dirties faster than the link: 40 + 40 ms > 50 ms target
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.Pause, ConvergenceReason.LaunchTargetReached),
            Policy.Decide(Input(40, dirtyBytesPerSecond: 150e6, targetMs: 50)));
        // the same at a 200 ms target: a live round first
        Assert.Equal(ConvergenceAction.ContinueLive, Policy.Decide(Input(40, dirtyBytesPerSecond: 150e6, targetMs: 200)).Action);
        // late after launch even a quiet guest's round would end past the target
        Assert.Equal(ConvergenceReason.LaunchTargetReached, Policy.Decide(Input(10, previousMs: 40, sinceLaunchMs: 95)).Reason);
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

    [Fact]
    public void TheHoldBudgetIsTheLinksBytesInMostOfTheLaunchTarget()
    {
        Assert.Equal(10_000_000, LaunchBudget.ForTarget(Gbit, TimeSpan.FromMilliseconds(100)).Bytes);
        Assert.Equal(5_000_000, new SyncEngine(1024, 4096, new SyncEngineOptions { LaunchTarget = TimeSpan.FromMilliseconds(50) }).Budget.Bytes);
        Assert.Throws<ArgumentOutOfRangeException>(() => LaunchBudget.ForTarget(Gbit, TimeSpan.FromMilliseconds(-1)));
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
