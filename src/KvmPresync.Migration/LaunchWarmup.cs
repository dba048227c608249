using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Memory;

namespace KvmPresync.Migration;

/// <summary>
/// Takes the post-launch engine steps once on a small scratch engine made with the run's options — a harvest absorbed, the
/// convergence policy asked, the final round planned (a generic instantiation of the hold-back planner no sync round uses)
/// and marked sent — so the JIT compiles them before launch. Measured without it: the first <c>PlanFinalRound</c> cost
/// ~2 ms, inside the downtime when the policy pauses at once; the first post-launch decision ~0.5 ms. <see cref="AwaitersAsync"/>
/// does the same for the task plumbing of the switchover's async steps, generic over their result structs (their first
/// completion cost ~0.9 ms between the pause decision and the pause, JIT-compiling the builder and awaiter methods).
/// </summary>
internal static class LaunchWarmup
{
    private const int Pages = 256;

    public static void Rehearse(SyncEngineOptions options, int pageSize)
    {
        var engine = new SyncEngine(Pages, pageSize, options); // the run's policy: its predictor (or none) decides which paths the steps take
        var harvest = new DirtyBitmap(Pages);
        var send = new DirtyBitmap(Pages);
        for (int p = 0; p < Pages; p += 7) harvest[p] = true;
        var step = new LaunchConvergence(engine, TimeSpan.Zero);
        for (int round = 1; round <= 2; round++)
        {
            ConvergenceDecision decision = step.AfterHarvest(harvest, new DirtyHarvest(TimeSpan.FromMilliseconds(round), harvest.Count()));
            _ = decision.Reason;
            engine.PlanFinalRound(send);
            engine.MarkSent(send);
        }
        engine.AbsorbAfterLaunch(harvest);
        _ = engine.PendingBytes();
    }

    /// <summary>Completes one task of each switchover step's result type, synchronously and after a yield, and awaits it as the sender does.</summary>
    public static async Task AwaitersAsync()
    {
        foreach (bool yields in new[] { false, true })
        {
            _ = await Returns<ConvergenceDecision>(yields).ConfigureAwait(false);
            _ = await Returns<PausedPhase.Timeline>(yields).ConfigureAwait(false);
            _ = await Returns<SendCounts>(yields).ConfigureAwait(false);
        }
    }

    private static async Task<T> Returns<T>(bool yields)
    {
        if (yields) await Task.Yield();
        return default!;
    }
}
