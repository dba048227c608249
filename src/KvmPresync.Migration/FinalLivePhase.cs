using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// After launch, with the guest still running: Launch frame, then rounds of harvest → <see cref="LaunchConvergence"/>
/// (the engine's convergence policy, the same step the simulator takes) → send everything pending, until the policy
/// says pause (or give up).
/// </summary>
internal static class FinalLivePhase
{
    public static async Task<ConvergenceDecision> RunAsync(SenderRun run, CancellationToken ct)
    {
        run.Phase = SenderPhase.FinalLive;
        SyncEngine engine = run.Engine;
        await run.Channel.Writer.WriteAsync(new Launch((ulong)run.Round, (ulong)engine.Pending.Count(), run.NowNs()), ct).ConfigureAwait(false);
        var convergence = new LaunchConvergence(engine, run.LastHarvestTime);
        while (true)
        {
            run.Channel.ThrowIfPeerEnded();
            var h = run.HarvestNow();
            ConvergenceDecision decision = convergence.AfterHarvest(run.Harvest, h, run.LastRtt);
            if (decision.Action != ConvergenceAction.ContinueLive)
            {
                run.FinalLiveRounds = convergence.LiveRounds;
                run.Report(run.Record(RoundPhase.FinalLive, h.DirtyPages, default, default, 0, 0, 0) with
                {
                    PendingPages = engine.Pending.Count(),
                    RemainingAtLaunchBytes = convergence.LastInput.PendingBytes,
                    Convergence = decision,
                }, deferEvent: true);
                return decision;
            }
            RoundPlan plan = engine.PlanFinalRound(run.Send);
            long before = run.Channel.Writer.BytesWritten;
            SendCounts counts = await run.SendPlannedAsync(skipUnchanged: true, ct).ConfigureAwait(false);
            long bytes = run.Channel.Writer.BytesWritten - before;
            run.Report(run.Record(RoundPhase.FinalLive, h.DirtyPages, plan, counts, bytes, bytes, 0) with { Convergence = decision });
            run.Round++;
        }
    }
}
