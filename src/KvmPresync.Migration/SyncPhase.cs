using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Memory;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// Pre-synchronization until launch is requested. Each round: harvest → <see cref="SyncEngine.PlanSyncRound(KvmPresync.Memory.DirtyBitmap, in KvmPresync.Core.DirtyHarvest, KvmPresync.Memory.DirtyBitmap, long?)"/>
/// (pending |= dirty, predictor, hold-back within the launch budget, window) → PageBatches from guest memory →
/// RoundEnd → the receiver's Ack (RTT, applied bytes) → the window's feedback → wait out the interval.
/// Classic pre-copy (<see cref="PresyncOptions.SyncBeforeLaunch"/> false) sends nothing and only keeps the connection.
/// </summary>
internal static class SyncPhase
{
    private static readonly TimeSpan MinAckWait = TimeSpan.FromMilliseconds(500);

    /// <summary>In classic pre-copy nothing else flows before launch: a Ping this often keeps the receiver's idle timeout away.</summary>
    internal static readonly TimeSpan KeepaliveInterval = TimeSpan.FromSeconds(5);

    public static async Task RunAsync(SenderRun run, Task launch, CancellationToken stop)
    {
        run.Phase = SenderPhase.Sync;
        run.Channel.Watching = true; // liveness (resumable sessions): every round is answered, silence means a dead link
        try
        {
            await RoundsAsync(run, launch, run.Channel.LinkToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (run.Channel.LinkLost is { } lost && !stop.IsCancellationRequested)
        {
            throw new LinkLostException(lost);
        }
        finally
        {
            run.Channel.Watching = false;
        }
    }

    private static async Task RoundsAsync(SenderRun run, Task launch, CancellationToken ct)
    {
        TimeSpan keepalive = run.Options.Reconnect is { } reconnect && reconnect.LivenessTimeout / 3 < KeepaliveInterval
            ? reconnect.LivenessTimeout / 3 : KeepaliveInterval;
        if (!run.Options.SyncBeforeLaunch)
        {
            TimeSpan lastPing = run.Clock.Elapsed;
            while (!launch.IsCompleted)
            {
                run.Channel.ThrowIfPeerEnded();
                if (run.Clock.Elapsed - lastPing >= keepalive)
                {
                    await run.Channel.Writer.WriteAsync(new Ping(run.NowNs()), ct).ConfigureAwait(false);
                    lastPing = run.Clock.Elapsed;
                }
                await WaitAsync(run, launch, run.Clock.Elapsed + TimeSpan.FromMilliseconds(100), ct).ConfigureAwait(false);
                run.SampleEarlyProgress();
            }
            return; // the guest ran undisturbed; every page is still pending
        }

        DirtyBitmap neverSent = run.NeverSent;
        long lastProgress = run.Source.ProgressTotal;
        TimeSpan lastTime = run.Clock.Elapsed;
        while (!launch.IsCompleted)
        {
            run.SampleEarlyProgress();
            TimeSpan start = run.Clock.Elapsed;
            run.Channel.ThrowIfPeerEnded();
            SyncEngine engine = run.Engine;
            Task<SenderChannel.RoundAck> ackOfRound = run.Channel.ExpectAck((ulong)run.Round);

            long before = run.BytesWritten;
            var h = run.HarvestNow();
            long windowBytes = engine.Window?.Window ?? engine.LinkCapacity(engine.Interval);
            RoundPlan plan = engine.PlanSyncRound(run.Harvest, h, run.Send);
            run.RebaseReadiness(engine.PendingBytes(), plan.HeldBytes);
            // a launch ends the round's send at the next batch: the switchover does not wait for a window it no longer needs
            TimeSpan sendStart = run.Clock.Elapsed;
            long listed = plan.SendPages;
            var pastBurst = new PastTheBurst(run, before);
            SendCounts counts;
            run.SyncSending = true;
            try
            {
                counts = await run.SendPlannedAsync(skipUnchanged: true, ct, stopEarly: unsent =>
                {
                    pastBurst.Look(unsent);
                    return launch.IsCompleted;
                }).ConfigureAwait(false);
            }
            finally
            {
                run.SyncSending = false;
            }
            NoteSendRates(run, pastBurst, sendStart, before, listed, counts);
            await run.Channel.Writer.WriteAsync(new RoundEnd((ulong)run.Round, (ulong)h.DirtyPages, (ulong)counts.Sent, (ulong)plan.HeldPages,
                (ulong)Math.Max(0, engine.Window?.Window ?? 0), run.NowNs()), ct).ConfigureAwait(false);
            long sent = run.BytesWritten - before;
            bool initialCopyDone = false;
            run.SyncBytes += sent;
            if (run.InitialCopyBytes is null)
            {
                neverSent.AndNot(run.Send);
                neverSent.AndNot(engine.Held); // a page the policy holds back has been dealt with by this pass too
                if (neverSent.IsEmpty()) run.InitialCopyBytes = run.SyncBytes; // the first pass over all memory is complete
                initialCopyDone = run.InitialCopyBytes is not null;
            }

            // The round's ack carries the RTT (queueing on the path and at the receiver) and what was applied.
            TimeSpan ackWait = engine.Interval > MinAckWait ? engine.Interval : MinAckWait;
            SenderChannel.RoundAck? ack = await run.Channel.WaitAckAsync(ackOfRound, ackWait, ct, orUntil: launch).ConfigureAwait(false);
            if (initialCopyDone) run.InitialCopyMs = (run.Clock.Elapsed - run.SyncStarted).TotalMilliseconds; // acked: applied at the receiver
            TimeSpan elapsed = run.Clock.Elapsed - lastTime;
            lastTime = run.Clock.Elapsed;
            long progress = run.Source.ProgressTotal;
            double progressRate = (progress - lastProgress) / Math.Max(1e-3, elapsed.TotalSeconds);
            lastProgress = progress;
            long acked = (long)(ack?.Ack.BytesApplied ?? 0);
            TimeSpan? rtt = ack is { } a ? TimeSpan.FromMilliseconds(a.RttMs) : null;
            if (rtt is not null) run.LastRtt = rtt;
            WindowDecision? decision = engine.Feedback(new RoundFeedback
            {
                Elapsed = elapsed,
                Rtt = rtt,
                BytesSent = (counts.Sent - counts.Zero) * run.Memory.PageSize,
                BytesAcked = acked,
                DirtyBytes = h.DirtyPages * engine.Cost.FullPageBytes,
                DeferredBytes = plan.DeferredBytes,
                ProgressRate = progressRate,
            });
            // compressed pages move faster than the link rate: the convergence policy and the estimate count that
            engine.PayloadSpeedup = run.Compressor.ExpectedSpeedup((long)run.Options.BatchPages * run.Memory.PageSize);
            run.Report(run.AfterSyncRound(run.Record(RoundPhase.Sync, h.DirtyPages, plan, counts, sent, windowBytes, elapsed.TotalMilliseconds), sent) with
            {
                RttMs = rtt?.TotalMilliseconds,
                AckedBytes = ack is null ? null : acked,
                ProgressRate = progressRate,
                WindowReason = decision?.Reason,
                IntervalReason = decision?.IntervalReason,
                // what is pending now, not what the plan left: a round the launch cut short left its unsent pages too
                Readiness = run.EstimateReadiness(engine.PendingBytes(), plan.HeldBytes),
            });
            run.Round++;
            if (run.Options.ProbeWorkingSet && run.Round % ProbeEveryRounds == 0) await ProbeShortWindowAsync(run, launch, start + engine.Interval, ct).ConfigureAwait(false);
            await WaitAsync(run, launch, start + engine.Interval, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The short window a probe measures (about a live round of a busy guest), and how often a round probes.</summary>
    internal static readonly TimeSpan ProbeWindow = TimeSpan.FromMilliseconds(20);
    internal const int ProbeEveryRounds = 2;

    /// <summary>
    /// What the guest dirties within <see cref="ProbeWindow"/>, at the time scale of a live round after launch (a frame
    /// buffer rewritten every 40 ms counts once in a 100 ms round, but once in every live round): two probe harvests that
    /// far apart, at a random moment of the round's idle time — a fixed moment would see a periodic guest at one phase only.
    /// The pages the probes take go back into the next harvest.
    /// </summary>
    private static async Task ProbeShortWindowAsync(SenderRun run, Task launch, TimeSpan roundEnd, CancellationToken ct)
    {
        TimeSpan now = run.Clock.Elapsed;
        TimeSpan latest = roundEnd - ProbeWindow - ProbeMargin;
        if (latest <= now) return; // the round's send left no idle time for it
        await WaitAsync(run, launch, now + (latest - now) * run.ProbePlacement.NextDouble(), ct).ConfigureAwait(false);
        if (launch.IsCompleted) return;
        DirtyHarvest first = run.ProbeHarvest();
        await WaitAsync(run, launch, run.Clock.Elapsed + ProbeWindow, ct).ConfigureAwait(false);
        if (launch.IsCompleted) return;
        DirtyHarvest second = run.ProbeHarvest();
        run.Engine.DirtyRate.NoteShortWindow(second.Time - first.Time, second.DirtyPages);
    }

    /// <summary>Room left between the probe window's end and the round's next harvest.</summary>
    private static readonly TimeSpan ProbeMargin = TimeSpan.FromMilliseconds(2);

    private static async Task WaitAsync(SenderRun run, Task launch, TimeSpan until, CancellationToken ct)
    {
        TimeSpan wait = until - run.Clock.Elapsed;
        if (wait <= TimeSpan.Zero) return;
        await Task.WhenAny(launch, Task.Delay(wait, ct)).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
    }

    /// <summary>
    /// Feeds the round's send to the two live rates. The rate limiter starts a sync round with a full bucket (the round before
    /// ended long ago), which the live rounds after launch, sent back to back, never have.
    /// <list type="bullet">
    /// <item><see cref="SyncEngine.SendRate"/>, the rate the convergence policy decides with: the whole round, less the burst's
    /// share of its bytes.</item>
    /// <item><see cref="SenderRun.LiveRoundRate"/>, the rate the readiness estimate times the live rounds with: from the batch
    /// at which the send had used the burst up to the round's end. The burst goes at once only on the wire, not through the
    /// hashing and compression before it, so the first rule, on a round not much larger than the burst, measures slow: the mpv
    /// video trace's rounds (1.1–1.6 MB on the wire, a third of it the burst) measured 2.4–3.7 Gbit/s of pages where its live
    /// rounds moved 3.75 (2,600 pages in 22.7 ms), and the estimate expected launches 10–18 ms longer than they were. Deciding
    /// with this rate changed the policy's behaviour (29 Nov 2026: audio's launch-to-resume 6.3 → 8.0 ms, the mpv trace's
    /// downtime 5.2 → 8.4 ms); the estimate models the policy as it decides, at the pace its rounds then move.</item>
    /// </list>
    /// Without a mark (no rate limiter, a round within the burst, data streams that do not stop at batches) both take the
    /// first rule.
    /// </summary>
    private static void NoteSendRates(SenderRun run, PastTheBurst pastBurst, TimeSpan sendStart, long before, long listed, SendCounts counts)
    {
        long processed = counts.Sent + counts.Unchanged, wire = run.BytesWritten - before;
        long? burst = run.Channel.Bucket?.BurstBytes;
        double page = run.Engine.Cost.FullPageBytes;
        TimeSpan end = run.Clock.Elapsed;
        (long bytes, TimeSpan took) = RateSample(listed, processed, mark: null, sendStart, end, wire, burst, page);
        run.Engine.SendRate.Note(bytes, took);
        (bytes, took) = RateSample(listed, processed, pastBurst.Mark, sendStart, end, wire, burst, page);
        run.LiveRoundRate.Note(bytes, took);
    }

    /// <summary>
    /// What a sync round's send tells a live rate (<see cref="NoteSendRates"/>): of <paramref name="processed"/> of the
    /// <paramref name="listed"/> pages, those after the <paramref name="mark"/> (its time, and the pages not yet sent or
    /// skipped there) over the time since it; without a mark, all of them less the burst's share of the
    /// <paramref name="wire"/> bytes, over the whole send.
    /// </summary>
    internal static (long PageBytes, TimeSpan Took) RateSample(long listed, long processed, (TimeSpan At, long Unsent)? mark, TimeSpan start,
        TimeSpan end, long wire, long? burstBytes, double fullPageBytes)
    {
        if (mark is { } m)
            return ((long)(Math.Max(0, processed - (listed - m.Unsent)) * fullPageBytes), end - m.At);
        double free = burstBytes is { } burst && wire > 0 ? Math.Min(1, burst / (double)wire) : 0;
        return ((long)(processed * fullPageBytes * (1 - free)), end - start);
    }

    /// <summary>The first batch boundary of a sync round's send at which the transport had taken the rate limiter's burst.</summary>
    private sealed class PastTheBurst(SenderRun run, long wireBefore)
    {
        private readonly long? _burst = run.Channel.Bucket?.BurstBytes;

        /// <summary>Run clock at the mark and the round's pages not yet sent or skipped there; null until it is passed.</summary>
        public (TimeSpan At, long Unsent)? Mark { get; private set; }

        public void Look(long unsent)
        {
            if (Mark is not null || _burst is not { } burst || run.BytesWritten - wireBefore < burst) return;
            Mark = (run.Clock.Elapsed, unsent);
        }
    }
}
