using KvmPresync.Memory;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// After launch, with the guest still running: Launch frame, then rounds of harvest → <see cref="LaunchConvergence"/>
/// (the engine's convergence policy, the same step the simulator takes) → send everything pending, until the policy
/// says pause (or give up). With a device-state handover (a <see cref="DestinationStart"/>), a pause waits for the
/// destination to be ready for it; live rounds go on meanwhile, so the paused delta stays what the policy wanted.
/// </summary>
internal static class FinalLivePhase
{
    /// <summary>A destination that starts after launch (libvirt): <see cref="Ready"/> completes when it is, <see cref="Failed"/> faults when it cannot.</summary>
    public sealed record DestinationStart(Task Ready, Task Failed, TimeSpan Timeout);

    public static async Task<ConvergenceDecision> RunAsync(SenderRun run, CancellationToken ct, DestinationStart? destination = null)
    {
        var sinceLaunch = System.Diagnostics.Stopwatch.StartNew();
        run.Phase = SenderPhase.FinalLive;
        SyncEngine engine = run.Engine;
        await run.Channel.Writer.WriteAsync(new Launch((ulong)run.Round, (ulong)engine.Pending.Count(), run.NowNs()), ct).ConfigureAwait(false);
        var convergence = new LaunchConvergence(engine, run.LastHarvestTime);
        // the pages the predictor held in the last sync round: what a first round sending before a burst leaves for after it
        DirtyBitmap? held = null;
        if (run.Bursts is not null)
        {
            held = new DirtyBitmap(engine.Held.PageCount);
            held.CopyFrom(engine.Held);
        }
        long liveStart = run.BytesWritten;
        while (true)
        {
            run.Channel.ThrowIfPeerEnded();
            var h = run.HarvestNow();
            run.FinalLiveHarvestTime += run.LastHarvestTook;
            ConvergenceDecision decision = convergence.AfterHarvest(run.Harvest, h, run.LastRtt, run.BurstForecast());
            bool waitingForDestination = decision.Action == ConvergenceAction.Pause && destination is not null && !destination.Ready.IsCompleted;
            if (waitingForDestination) await CheckDestinationAsync(run, destination!, sinceLaunch.Elapsed).ConfigureAwait(false);
            if (decision.Action != ConvergenceAction.ContinueLive && !waitingForDestination)
            {
                run.FinalLiveRounds = convergence.LiveRounds;
                run.FinalLiveBytes = run.BytesWritten - liveStart;
                run.Report(run.Record(RoundPhase.FinalLive, h.DirtyPages, default, default, 0, 0, 0) with
                {
                    PendingPages = engine.Pending.Count(),
                    RemainingAtLaunchBytes = convergence.LastInput.PendingBytes,
                    Convergence = decision,
                }, deferEvent: true);
                return decision;
            }
            RoundPlan plan = engine.PlanFinalRound(run.Send);
            if (decision.Reason == ConvergenceReason.SendingBeforeBurst && held is not null) run.Send.AndNot(held);
            long before = run.BytesWritten;
            SendCounts counts = await run.SendPlannedAsync(skipUnchanged: true, ct).ConfigureAwait(false);
            long bytes = run.BytesWritten - before;
            // Launch-to-resume is the critical path: the round's event (a console line, metrics) waits for FinalState,
            // unless the destination is still starting (then rounds are slow and progress should show).
            run.Report(run.Record(RoundPhase.FinalLive, h.DirtyPages, plan, counts, bytes, bytes, 0) with { Convergence = decision },
                deferEvent: !waitingForDestination);
            run.Round++;
            if (waitingForDestination)
            {
                // a ping lets the receiver report readiness (it checks after each frame); rounds slow down to the poll
                // interval meanwhile, so a page written over and over is not sent every few hundred microseconds
                await run.Channel.Writer.WriteAsync(new Ping(run.NowNs()), ct).ConfigureAwait(false);
                await Task.WhenAny(destination!.Ready, destination.Failed, Task.Delay(DestinationPollInterval, ct)).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Round and ping interval while the destination starts.</summary>
    private static readonly TimeSpan DestinationPollInterval = TimeSpan.FromMilliseconds(10);

    /// <summary>Throws why the destination cannot start (the guest still runs), or that it took too long.</summary>
    private static async Task CheckDestinationAsync(SenderRun run, DestinationStart destination, TimeSpan sinceLaunch)
    {
        run.Phase = SenderPhase.AwaitingDestination;
        if (destination.Failed.IsCompleted)
        {
            await destination.Failed.ConfigureAwait(false); // throws why the destination could not start
            throw new InvalidOperationException("the device-state handover ended before the destination was ready for it");
        }
        if (sinceLaunch > destination.Timeout)
            throw new TimeoutException($"the destination was not ready for the device state within {destination.Timeout.TotalSeconds:0.#} s of launch " +
                "(its QEMU did not start, or its libvirt hook does not reach the receiver: see docs/LIBVIRT.md, Failures)");
    }
}
