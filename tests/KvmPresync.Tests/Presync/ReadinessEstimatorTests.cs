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

    [Fact]
    public void AGuestFasterThanTheLinkPausesAtOnceToMeetTheTarget()
    {
        ReadinessEstimate e = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), Inputs(40, 150e6, targetMs: 50));
        Assert.Equal(0, e.LiveRounds);
        Assert.Equal(0.2 + 40 + 0.2 + 0.5 + 2, e.DowntimeMs, 3);
        Assert.Equal(e.DowntimeMs, e.LaunchToResumeMs, 6);
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
        // 40 ms after the harvest at 25 MB/s newly pending: 1 MB (8 ms of link) more to move at launch
        ReadinessInputs at = Inputs(40, 150e6, targetMs: 50) with { NewlyPendingBytesPerSecond = 25e6 };
        ReadinessEstimate now = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), at);
        ReadinessEstimate later = ReadinessEstimator.Estimate(new DowntimeTargetConvergence(), at with { SinceHarvest = TimeSpan.FromMilliseconds(40) });
        Assert.Equal(now.DowntimeMs + 8, later.DowntimeMs, 3);
        Assert.Equal(now.Bytes + 1_000_000, later.Bytes);
    }
}
