using System.Runtime;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Memory;
using KvmPresync.Migration;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// The sender rehearses the post-launch engine steps before launch, so the first decision and the final round's plan (which
/// land in the downtime when the policy pauses at once) compile nothing.
/// </summary>
public sealed class LaunchWarmupTests
{
    [Fact]
    public void After_the_rehearsal_the_post_launch_steps_compile_nothing()
    {
        var options = new SyncEngineOptions { Policy = SyncPolicy.PredictSlowStart, LaunchTarget = TimeSpan.FromMilliseconds(3) };
        LaunchWarmup.Rehearse(options, 4096);
        var engine = new SyncEngine(4096, 4096, options);
        var harvest = new DirtyBitmap(4096);
        var send = new DirtyBitmap(4096);
        for (int p = 0; p < 4096; p += 5) harvest[p] = true;
        engine.Absorb(harvest); // a sync round (compiled by the sync phase, long before launch)

        long before = JitInfo.GetCompiledMethodCount(currentThread: true);
        var step = new LaunchConvergence(engine, TimeSpan.Zero);
        ConvergenceDecision decision = step.AfterHarvest(harvest, new DirtyHarvest(TimeSpan.FromMilliseconds(1), 100));
        _ = decision.Reason;
        engine.PlanFinalRound(send);
        engine.MarkSent(send);
        engine.AbsorbAfterLaunch(harvest);
        _ = engine.PendingBytes();
        long compiled = JitInfo.GetCompiledMethodCount(currentThread: true) - before;
        Assert.True(compiled == 0, $"the post-launch steps JIT-compiled {compiled} method(s) after the rehearsal");
        Assert.True(send.Count() > 0);
    }
}
