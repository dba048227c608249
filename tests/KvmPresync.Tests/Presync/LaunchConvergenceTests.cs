using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Memory;

namespace KvmPresync.Tests.Presync;

/// <summary>The post-launch round step: what it feeds the convergence policy and what it leaves alone.</summary>
public sealed class LaunchConvergenceTests
{
    private const int Pages = 4096;

    private static SyncEngine Engine(IConvergencePolicy? policy = null) =>
        new(Pages, 4096, new SyncEngineOptions { Policy = SyncPolicy.PredictSlowStart, Convergence = policy ?? new DowntimeTargetConvergence() });

    private static DirtyBitmap Dirty(int first, int count)
    {
        var b = new DirtyBitmap(Pages);
        for (int p = first; p < first + count; p++) b[p] = true;
        return b;
    }

    [Fact]
    public void After_launch_harvests_become_pending_without_teaching_the_predictor()
    {
        SyncEngine engine = Engine();
        engine.Absorb(Dirty(0, 100)); // a sync round
        long rounds = engine.Predictor!.Rounds;
        var step = new LaunchConvergence(engine, TimeSpan.Zero);
        step.AfterHarvest(Dirty(200, 50), new DirtyHarvest(TimeSpan.FromMilliseconds(5), 50));
        Assert.Equal(rounds, engine.Predictor.Rounds); // nothing is held back after launch: no O(active pages) update on the critical path
        Assert.True(engine.Pending[200] && engine.Pending[249] && engine.Pending[0]);
    }

    [Fact]
    public void The_policy_sees_the_link_rate_scaled_by_the_payload_speedup()
    {
        var seen = new RecordingPolicy();
        SyncEngine engine = Engine(seen);
        new LaunchConvergence(engine, TimeSpan.Zero).AfterHarvest(Dirty(0, 10), new DirtyHarvest(TimeSpan.FromMilliseconds(1), 10));
        Assert.Equal(engine.Options.LinkBitsPerSecond, seen.Last.LinkBitsPerSecond);

        engine.PayloadSpeedup = 3; // pages compress to a third and the CPU keeps up
        new LaunchConvergence(engine, TimeSpan.Zero).AfterHarvest(Dirty(0, 10), new DirtyHarvest(TimeSpan.FromMilliseconds(1), 10));
        Assert.Equal(3 * engine.Options.LinkBitsPerSecond, seen.Last.LinkBitsPerSecond);
        Assert.Equal(3 * engine.Options.LinkBitsPerSecond, engine.EffectiveLinkBitsPerSecond);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void A_payload_speedup_below_1_or_not_finite_is_refused(double speedup)
    {
        SyncEngine engine = Engine();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => engine.PayloadSpeedup = speedup);
        Assert.Contains("≥ 1", e.Message);
        Assert.Equal(1, engine.PayloadSpeedup);
    }

    private sealed class RecordingPolicy : IConvergencePolicy
    {
        public ConvergenceInput Last { get; private set; }

        public ConvergenceDecision Decide(in ConvergenceInput input)
        {
            Last = input;
            return new(ConvergenceAction.Pause, ConvergenceReason.FitsDowntimeTarget);
        }
    }
}
