using KvmPresync.Core;
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
                return Ends(decision, h.DirtyPages, convergence.LastInput.PendingBytes);
            RoundPlan plan = engine.PlanFinalRound(run.Send);
            if (decision.Reason == ConvergenceReason.SendingBeforeBurst && held is not null) run.Send.AndNot(held);
            long before = run.BytesWritten;
            TargetCheck? target = decision.StopAtTarget && run.ReadinessInputs is { } inputs ? new TargetCheck(run, inputs, convergence.LastInput) : null;
            SendCounts counts = await run.SendPlannedAsync(skipUnchanged: true, ct, target is null ? null : target.Reached).ConfigureAwait(false);
            long bytes = run.BytesWritten - before;
            // Launch-to-resume is the critical path: the round's event (a console line, metrics) waits for FinalState,
            // unless the destination is still starting (then rounds are slow and progress should show).
            run.Report(run.Record(RoundPhase.FinalLive, h.DirtyPages, plan, counts, bytes, bytes, 0) with { Convergence = decision },
                deferEvent: !waitingForDestination);
            run.Round++;
            if (target is { HasStopped: true }) // pausing now, with the rest, meets the launch target; another batch live would not
                return Ends(new ConvergenceDecision(ConvergenceAction.Pause, ConvergenceReason.LaunchTargetReached), 0, engine.PendingBytes());
            if (waitingForDestination)
            {
                // a ping lets the receiver report readiness (it checks after each frame); rounds slow down to the poll
                // interval meanwhile, so a page written over and over is not sent every few hundred microseconds
                await run.Channel.Writer.WriteAsync(new Ping(run.NowNs()), ct).ConfigureAwait(false);
                await Task.WhenAny(destination!.Ready, destination.Failed, Task.Delay(DestinationPollInterval, ct)).ConfigureAwait(false);
            }
        }

        // the live phase ends (a pause or giving up): its record, deferred off the critical path, and the launch's totals
        ConvergenceDecision Ends(ConvergenceDecision decision, long dirtyPages, long remainingBytes)
        {
            run.FinalLiveRounds = convergence.LiveRounds;
            run.FinalLiveBytes = run.BytesWritten - liveStart;
            run.Report(run.Record(RoundPhase.FinalLive, dirtyPages, default, default, 0, 0, 0) with
            {
                PendingPages = engine.Pending.Count(),
                RemainingAtLaunchBytes = remainingBytes,
                Convergence = decision,
            }, deferEvent: true);
            return decision;
        }
    }

    /// <summary>
    /// The check of a round that stops at the launch target (<see cref="ConvergenceDecision.StopAtTarget"/>), asked before each
    /// batch: would pausing after the next batch, with the round's unsent pages, the pending pages it does not send (the held
    /// ones) and what the guest dirtied since the harvest (looked at without harvesting: <see cref="IDirtyPagePeek"/>), end
    /// launch-to-resume past the target? The downtime is <see cref="ReadinessEstimator.Downtime"/> of the readiness estimate's
    /// own inputs, which steps the same check through its model, so the launch pauses where the estimate says it would.
    /// </summary>
    private sealed class TargetCheck
    {
        private readonly SenderRun _run;
        private readonly ReadinessInputs _inputs;
        private readonly TimeSpan _roundStart; // since launch, at the round's start (the convergence policy's clock)
        private readonly TimeSpan _harvestTime;
        private readonly long _outside;        // pending pages the round does not send
        private readonly IDirtyPagePeek? _peek;
        private readonly BurstTimedWrites? _bursts;
        private TimeSpan _interval;            // between two checks: one batch (running mean, from the estimate's own figure)
        private TimeSpan _lastAsked = TimeSpan.MinValue;

        /// <param name="round">The convergence input the round was decided on (its harvest's time, time since launch, the bursts).</param>
        public TargetCheck(SenderRun run, ReadinessInputs inputs, in ConvergenceInput round)
        {
            _run = run;
            _inputs = inputs;
            _roundStart = round.SinceLaunch;
            _harvestTime = round.Now;
            _outside = run.Engine.Pending.Count() - run.Send.Count();
            _peek = run.Source.DirtyLog as IDirtyPagePeek;
            _bursts = round.Bursts;
            _interval = inputs.StopCheckInterval;
        }

        public bool HasStopped { get; private set; }

        /// <summary>
        /// True when pausing after one more batch would end past the target: the check comes once a batch and a stop waits for
        /// the batch in flight, so it looks two batches ahead (the guest writes on meanwhile).
        /// </summary>
        public bool Reached(long unsentPages)
        {
            TimeSpan now = _run.HarvestClockNow;
            if (_lastAsked != TimeSpan.MinValue) _interval += (now - _lastAsked - _interval) / 4;
            _lastAsked = now;
            double pageBytes = _run.Engine.Cost.FullPageBytes;
            // a round whose rest goes out within the check's own horizon ends as soon as any stop could pause it
            if (unsentPages * pageBytes * 8 / _run.Engine.LiveTransferBitsPerSecond <= 2 * _interval.TotalSeconds) return HasStopped = false;
            double dirtied = (_peek?.Peek().DirtyPages ?? 0) * pageBytes;
            double rest = (unsentPages + _outside) * pageBytes + ReadinessEstimator.NewlyDirtied(dirtied, _outside * pageBytes, _bursts);
            TimeSpan resumed = _roundStart + (now - _harvestTime) + 2 * _interval + ReadinessEstimator.Downtime(_inputs, rest);
            return HasStopped = resumed >= _inputs.LaunchTarget;
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
