using KvmPresync.Engine;
using KvmPresync.Memory;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// The guest paused: its vCPU/device state saved on a standby thread meanwhile (<see cref="SenderRun.StateSave"/>) ‖ last
/// harvest → every pending page (no hash skip: a page that reached the receiver torn during a
/// live round and later returned to its old content must still be sent) → MSG_ZEROCOPY completions → the memory digest
/// (<see cref="SourceDigest"/>: from the sent hashes, O(delta), or with <see cref="VerifyMode.Full"/> from all the paused
/// bytes) → the saved state → FinalState.
/// </summary>
internal static class PausedPhase
{
    /// <summary>Clock ticks at each step of the downtime, and the pages sent paused.</summary>
    public readonly record struct Timeline(long PausedAt, long DeltaSentAt, long DigestAt, long StateSentAt, long DeltaPages);

    public static async Task<Timeline> RunAsync(SenderRun run, Action markPaused, CancellationToken ct)
    {
        run.Phase = SenderPhase.Paused;
        run.Source.Pause();
        markPaused();
        long pausedAt = run.Clock.ElapsedTicks;
        run.StateSave.Start(run.Source.SaveState); // the paused vCPU's state does not change: save it while the delta goes out
        run.GuestPaused();
        long deltaSentAt, digestAt, stateSentAt;
        SendCounts counts;
        try
        {
            SyncEngine engine = run.Engine;
            var h = run.HarvestNow();
            engine.AbsorbAfterLaunch(run.Harvest);
            RoundPlan plan = engine.PlanFinalRound(run.Send);
            long before = run.BytesWritten;
            counts = await run.SendPlannedAsync(skipUnchanged: false, ct).ConfigureAwait(false);
            if (run.Channel.ZeroCopy is { } zeroCopy) await zeroCopy.WaitForCompletionsAsync(run.Options.ResumeTimeout, ct).ConfigureAwait(false);
            long bytes = run.BytesWritten - before;
            run.Report(run.Record(RoundPhase.Paused, h.DirtyPages, plan, counts, bytes, bytes, 0), deferEvent: true);
            if (!engine.Pending.IsEmpty())
                throw new InvalidOperationException($"{engine.Pending.Count()} pages still pending after the final send");
            deltaSentAt = run.Clock.ElapsedTicks;
            byte[] digest = SourceDigest.Of(run);
            digestAt = run.Clock.ElapsedTicks;
            byte[] state = run.StateSave.Wait();
            await run.Channel.Writer.WriteAsync(new FinalState((ulong)run.Memory.PageCount, run.NowNs(), digest, state), ct).ConfigureAwait(false);
            stateSentAt = run.Clock.ElapsedTicks;
        }
        catch
        {
            run.StateSave.WaitIfStarted(); // the caller resumes the source: not while its state is being read
            throw;
        }
        run.RaiseDeferred(); // off the critical path: the destination is verifying and resuming meanwhile
        return new Timeline(pausedAt, deltaSentAt, digestAt, stateSentAt, counts.Sent);
    }
}
