using KvmPresync.Core;
using KvmPresync.Engine;
using System.Diagnostics;
using System.Net.Sockets;
using KvmPresync.Memory;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// The source side of a pre-synchronized migration over one authenticated connection:
/// <code>
///  handshake ─▶ sync rounds (harvest → predictor → window → PageBatch… RoundEnd ◀ Ack) ─▶ Launch()
///   ─▶ final live rounds while the delta shrinks ─▶ pause ─▶ last harvest ─▶ every pending page
///   ─▶ FinalState(state, digest) ─▶ ◀ Resumed ─▶ stop source        (any failure before Resumed: resume source)
/// </code>
/// Page payloads go to the transport as spans into guest memory (no managed copy). A page read while the
/// guest runs may be torn; it is dirty again and resent, and only the paused final phase is verified.
/// </summary>
public sealed class PresyncSender
{
    /// <summary>The guest's work rate is also sampled over this first part of the sync period (see <see cref="MigrationResult.ProgressRateFirstSeconds"/>).</summary>
    public static readonly TimeSpan ProgressSampleWindow = TimeSpan.FromSeconds(5);

    private readonly IMigrationSource _source;
    private readonly Socket _socket;
    private readonly PreSharedKey _key;
    private readonly PresyncOptions _options;
    private readonly TaskCompletionSource _launch = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<SyncRoundReport> _rounds = [];
    private readonly object _ackLock = new();
    private (ulong Round, TaskCompletionSource<(Ack Ack, double RttMs)> Done)? _awaitedAck;
    private long _launchRequestedTicks;

    public PresyncSender(IMigrationSource source, Socket connected, PreSharedKey key, PresyncOptions? options = null)
    {
        _source = source ?? throw new ArgumentNullException(nameof(source));
        _socket = connected ?? throw new ArgumentNullException(nameof(connected));
        _key = key ?? throw new ArgumentNullException(nameof(key));
        _options = options ?? new PresyncOptions();
        if (_source.Memory.PageSize != _source.DirtyLog.PageSize || _source.Memory.PageCount != _source.DirtyLog.PageCount)
            throw new ArgumentException("the source's dirty log and memory disagree on the page layout", nameof(source));
    }

    /// <summary>Raised after every round (sync and final), on the sender's thread.</summary>
    public event Action<SyncRoundReport>? RoundCompleted;

    /// <summary>Requests the switchover. Safe to call from any thread, any number of times.</summary>
    public void Launch()
    {
        if (Interlocked.CompareExchange(ref _launchRequestedTicks, _clock.ElapsedTicks, 0) == 0) _launch.TrySetResult();
    }

    public bool LaunchRequested => _launch.Task.IsCompleted;

    /// <summary>
    /// Runs pre-synchronization until <see cref="Launch"/>, then the switchover. Returns the outcome; on any
    /// failure before the destination confirmed it runs, the source guest is running again.
    /// Throws <see cref="AuthenticationFailedException"/> when the peer cannot be authenticated (do not retry).
    /// </summary>
    public async Task<MigrationResult> RunAsync(CancellationToken cancellationToken = default)
    {
        GuestMemoryMap memory = _source.Memory;
        MemoryLayout layout = MigrationLayout.Of(memory);
        var stream = new NetworkStream(_socket, ownsSocket: false);
        var reader = new FrameReader(stream);
        double limit = _options.RateLimitBitsPerSecond ?? _options.Engine.LinkBitsPerSecond;
        TokenBucket? bucket = limit > 0 && double.IsFinite(limit)
            ? new TokenBucket((long)limit, TokenBucket.DefaultBurstBytes((long)limit))
            : null;
        ZeroCopySocketWriter? zeroCopy = _options.ZeroCopy
            ? new ZeroCopySocketWriter(_socket, new ZeroCopyWriterOptions { ZeroCopy = true, RateLimit = bucket })
            : null;
        using var zeroCopyOwner = zeroCopy;
        var writer = new FrameWriter(zeroCopy is not null ? zeroCopy : new SocketGatherWriter(_socket, bucket));
        try
        {
            await Handshake.RunSenderAsync(reader, writer,
                new SenderHandshakeOptions(layout, PageHashAlgorithm.PageHasher, HelloOptions.ZeroPages), _key, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is (ProtocolException and not AuthenticationFailedException) or IOException or SocketException)
        {
            return new MigrationResult { Succeeded = false, Failure = $"handshake failed: {Describe(e)}; the source guest kept running" };
        }

        _ = DigestOf(memory, pageLimit: 4096); // JIT and warm the digest path now, not during the downtime
        var session = new PageBatchEncoder(memory, writer, _options.BatchPages);
        var engine = new SyncEngine(memory.PageCount, memory.PageSize, _options.Engine with { HeaderBytesPerPage = PageDescriptor.WireLength });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var resumed = new TaskCompletionSource<Resumed>(TaskCreationOptions.RunContinuationsAsynchronously);
        Task ackLoop = ReadAcksAsync(reader, resumed, stop.Token);

        long syncBytes = 0;
        bool paused = false;
        try
        {
            // ---- pre-synchronization ----
            var harvest = new DirtyBitmap(memory.PageCount);
            var send = new DirtyBitmap(memory.PageCount);
            long round = 0;
            long lastProgress = _source.ProgressTotal;
            TimeSpan lastTime = _clock.Elapsed;
            var neverSent = new DirtyBitmap(memory.PageCount);
            neverSent.SetAll();
            long? initialCopyBytes = null;
            long syncStartProgress = _source.ProgressTotal;
            TimeSpan syncStart = _clock.Elapsed;
            double? earlyProgressRate = null;
            void SampleEarlyProgress()
            {
                TimeSpan inSync = _clock.Elapsed - syncStart;
                if (earlyProgressRate is null && inSync >= ProgressSampleWindow)
                    earlyProgressRate = (_source.ProgressTotal - syncStartProgress) / inSync.TotalSeconds;
            }
            if (!_options.SyncBeforeLaunch)
            {
                // classic pre-copy: the guest runs undisturbed until launch; the connection is kept alive
                while (!_launch.Task.IsCompleted)
                {
                    FailIfPeerEnded(resumed, ackLoop);
                    await WaitRoundAsync(_clock.Elapsed + TimeSpan.FromMilliseconds(100), stop.Token).ConfigureAwait(false);
                    SampleEarlyProgress();
                }
            }
            while (!_launch.Task.IsCompleted)
            {
                SampleEarlyProgress();
                TimeSpan start = _clock.Elapsed;
                FailIfPeerEnded(resumed, ackLoop);
                long before = writer.BytesWritten;
                var ackOfRound = new TaskCompletionSource<(Ack Ack, double RttMs)>(TaskCreationOptions.RunContinuationsAsynchronously);
                lock (_ackLock) _awaitedAck = ((ulong)round, ackOfRound);
                RoundOutcome o = await RunRoundAsync(engine, session, writer, harvest, send, round, holdBack: true, windowBytes: null, stop.Token).ConfigureAwait(false);
                long sent = writer.BytesWritten - before;
                syncBytes += sent;
                if (initialCopyBytes is null)
                {
                    neverSent.AndNot(send);
                    neverSent.AndNot(engine.Held); // a page the policy holds back has been dealt with by this pass too
                    if (neverSent.IsEmpty()) initialCopyBytes = syncBytes; // the first pass over all memory is complete
                }
                // The round's ack carries the RTT (queueing on the path and at the receiver) and what was applied.
                TimeSpan ackWait = engine.Interval > TimeSpan.FromMilliseconds(500) ? engine.Interval : TimeSpan.FromMilliseconds(500);
                await Task.WhenAny(ackOfRound.Task, ackLoop, Task.Delay(ackWait, stop.Token)).ConfigureAwait(false);
                (Ack Ack, double RttMs)? ack = ackOfRound.Task.IsCompletedSuccessfully ? ackOfRound.Task.Result : null;
                TimeSpan elapsed = _clock.Elapsed - lastTime;
                lastTime = _clock.Elapsed;
                long progress = _source.ProgressTotal;
                double progressRate = (progress - lastProgress) / Math.Max(1e-3, elapsed.TotalSeconds);
                lastProgress = progress;
                long payloadSent = (o.Counts.Sent - o.Counts.Zero) * memory.PageSize;
                long acked = (long)(ack?.Ack.BytesApplied ?? 0);
                double? rtt = ack?.RttMs;
                WindowDecision? decision = engine.Feedback(new RoundFeedback
                {
                    Elapsed = elapsed,
                    Rtt = rtt is { } r ? TimeSpan.FromMilliseconds(r) : null,
                    BytesSent = payloadSent,
                    BytesAcked = acked,
                    DirtyBytes = o.Dirty * engine.Cost.FullPageBytes,
                    DeferredBytes = o.Plan.DeferredBytes,
                    ProgressRate = progressRate,
                });
                Report(o, round++, "sync", sent, rtt, acked / Math.Max(1e-3, elapsed.TotalSeconds) * 8 / 1e6, progressRate, decision?.Reason.ToString(),
                    engine.Window?.Window ?? engine.LinkCapacity(engine.Interval), engine.Interval.TotalMilliseconds);
                await WaitRoundAsync(start + engine.Interval, stop.Token).ConfigureAwait(false);
            }

            SampleEarlyProgress();
            // ---- launch: final live rounds while the delta shrinks, bounded in time ----
            long launchStart = Interlocked.Read(ref _launchRequestedTicks);
            double syncProgressRate = (_source.ProgressTotal - syncStartProgress) / Math.Max(1e-3, (_clock.Elapsed - syncStart).TotalSeconds);
            long launchBytesStart = writer.BytesWritten;
            await writer.WriteAsync(new Launch((ulong)round, (ulong)engine.Pending.Count(), Now()), stop.Token).ConfigureAwait(false);
            var finalHarvest = new DirtyBitmap(memory.PageCount);
            var finalSend = new DirtyBitmap(memory.PageCount);
            long downtimeBudget = (long)(_options.Engine.LinkBitsPerSecond / 8 * _options.DowntimeTarget.TotalSeconds);
            TimeSpan finalDeadline = _clock.Elapsed + _options.MaxFinalDuration;
            long previousPending = long.MaxValue;
            while (_clock.Elapsed < finalDeadline)
            {
                finalHarvest.Clear();
                _source.DirtyLog.Harvest(finalHarvest);
                engine.Absorb(finalHarvest);
                long pendingNow = engine.Pending.Count();
                // Converged: what is left fits the downtime target, or another live round no longer shrinks it
                // (the guest dirties as fast as the link drains: iterating only delays the pause).
                if (pendingNow * engine.Cost.FullPageBytes <= downtimeBudget || pendingNow > previousPending / 10 * 8) break;
                previousPending = pendingNow;
                FailIfPeerEnded(resumed, ackLoop);
                RoundOutcome o = await SendPlannedAsync(engine, session, finalSend, round, holdBack: false, long.MaxValue, finalHarvest.Count(), stop.Token).ConfigureAwait(false);
                Report(o, round++, "final", o.Bytes, null, null, null, null);
            }

            // ---- stop and copy ----
            _source.Pause();
            paused = true;
            long pausedAt = _clock.ElapsedTicks;
            finalHarvest.Clear();
            _source.DirtyLog.Harvest(finalHarvest);
            engine.Absorb(finalHarvest);
            long finalPages = engine.Pending.Count();
            RoundOutcome last = await SendPlannedAsync(engine, session, finalSend, round, holdBack: false, long.MaxValue, finalHarvest.Count(), stop.Token, paused: true).ConfigureAwait(false);
            if (zeroCopy is not null) await zeroCopy.WaitForCompletionsAsync(_options.ResumeTimeout, stop.Token).ConfigureAwait(false);
            Report(last, round, "paused", last.Bytes, null, null, null, null);
            if (!engine.Pending.IsEmpty())
                throw new InvalidOperationException($"{engine.Pending.Count()} pages still pending after the final send");
            long deltaSentAt = _clock.ElapsedTicks;
            byte[] digest = DigestOf(memory);
            long digestAt = _clock.ElapsedTicks;
            byte[] state = _source.SaveState();
            await writer.WriteAsync(new FinalState((ulong)memory.PageCount, Now(), digest, state), stop.Token).ConfigureAwait(false);
            long stateSentAt = _clock.ElapsedTicks;

            // The ack loop ends right after it completes `resumed` (or faults with the receiver's reason).
            await Task.WhenAny(ackLoop, Task.Delay(_options.ResumeTimeout, stop.Token)).ConfigureAwait(false);
            if (!resumed.Task.IsCompletedSuccessfully)
            {
                if (ackLoop.IsCompleted) await ackLoop.ConfigureAwait(false); // throws the peer's reason
                throw ackLoop.IsCompleted
                    ? new IOException("the receiver closed the connection without confirming the guest runs")
                    : new TimeoutException($"the destination did not confirm it runs within {_options.ResumeTimeout.TotalSeconds:0.#} s");
            }
            long resumedAt = _clock.ElapsedTicks;
            _source.Stop();
            return new MigrationResult
            {
                Succeeded = true,
                Verified = true,
                LaunchToResumeMs = TicksToMs(resumedAt - launchStart),
                DowntimeMs = TicksToMs(resumedAt - pausedAt),
                SyncBytes = syncBytes,
                InitialCopyBytes = initialCopyBytes,
                LaunchBytes = writer.BytesWritten - launchBytesStart,
                FinalDeltaPages = finalPages,
                ProgressRateDuringSync = syncProgressRate,
                ProgressRateFirstSeconds = earlyProgressRate,
                ZeroCopy = zeroCopy?.Stats,
                Downtime = new DowntimeBreakdown(TicksToMs(deltaSentAt - pausedAt), TicksToMs(digestAt - deltaSentAt),
                    TicksToMs(stateSentAt - digestAt), TicksToMs(resumedAt - stateSentAt)),
                Rounds = _rounds,
            };
        }
        catch (Exception e) when (e is not AuthenticationFailedException && !cancellationToken.IsCancellationRequested)
        {
            if (paused) _source.Resume();
            return new MigrationResult
            {
                Succeeded = false,
                Failure = Describe(e) + (paused ? "; the source guest was resumed" : "; the source guest kept running"),
                SyncBytes = syncBytes,
                Rounds = _rounds,
            };
        }
        catch
        {
            if (paused) _source.Resume();
            throw;
        }
        finally
        {
            stop.Cancel();
            try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
            try { await ackLoop.ConfigureAwait(false); } catch { /* reported above when it mattered */ }
        }
    }

    private readonly record struct RoundOutcome(RoundPlan Plan, long Dirty, SendCounts Counts, long Bytes);

    private async Task<RoundOutcome> RunRoundAsync(SyncEngine engine, PageBatchEncoder session, FrameWriter writer, DirtyBitmap harvest,
        DirtyBitmap send, long round, bool holdBack, long? windowBytes, CancellationToken ct)
    {
        harvest.Clear();
        DirtyHarvest h = _source.DirtyLog.Harvest(harvest);
        engine.Absorb(harvest);
        RoundOutcome o = await SendPlannedAsync(engine, session, send, round, holdBack, windowBytes, h.DirtyPages, ct).ConfigureAwait(false);
        await writer.WriteAsync(new RoundEnd((ulong)round, (ulong)h.DirtyPages, (ulong)o.Counts.Sent, (ulong)o.Plan.HeldPages,
            (ulong)Math.Max(0, windowBytes ?? engine.Window?.Window ?? 0), Now()), ct).ConfigureAwait(false);
        return o;
    }

    private static async Task<RoundOutcome> SendPlannedAsync(SyncEngine engine, PageBatchEncoder session, DirtyBitmap send, long round,
        bool holdBack, long? windowBytes, long dirty, CancellationToken ct, bool paused = false)
    {
        RoundPlan plan = engine.Plan(send, holdBack, windowBytes);
        long before = session.BytesWritten;
        SendCounts counts = await session.SendAsync((ulong)round, send, ct, skipUnchanged: !paused).ConfigureAwait(false);
        engine.MarkSent(send); // only after the transport took every page of the round
        return new RoundOutcome(plan, dirty, counts, session.BytesWritten - before);
    }

    private void Report(RoundOutcome o, long round, string phase, long bytes, double? rtt, double? goodputMbps, double? progressRate, string? reason,
        long windowBytes = 0, double intervalMs = 0)
    {
        var r = new SyncRoundReport
        {
            Round = round,
            TimeMs = _clock.Elapsed.TotalMilliseconds,
            Phase = phase,
            DirtyPages = o.Dirty,
            PendingPages = o.Plan.PendingPages,
            SentPages = o.Counts.Sent,
            SentBytes = bytes,
            SkippedUnchangedPages = o.Counts.Unchanged,
            ZeroPages = o.Counts.Zero,
            HeldPages = o.Plan.HeldPages,
            WindowBytes = windowBytes,
            IntervalMs = intervalMs,
            RttMs = rtt,
            GoodputMbps = goodputMbps,
            ProgressRate = progressRate,
            WindowReason = reason,
        };
        _rounds.Add(r);
        RoundCompleted?.Invoke(r);
    }

    private async Task ReadAcksAsync(FrameReader reader, TaskCompletionSource<Resumed> resumed, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                FrameHeader header = await reader.ReadHeaderAsync(ct).ConfigureAwait(false);
                switch (header.Type)
                {
                    case FrameType.Ack:
                        Ack ack = await reader.ReadBodyAsync<Ack>(header, ct).ConfigureAwait(false);
                        double rttMs = (Now() - ack.SenderTimestampEchoNs) / 1e6;
                        lock (_ackLock)
                            if (_awaitedAck is { } awaited && awaited.Round == ack.RoundId) awaited.Done.TrySetResult((ack, rttMs));
                        break;
                    case FrameType.Resumed:
                        resumed.TrySetResult(await reader.ReadBodyAsync<Resumed>(header, ct).ConfigureAwait(false));
                        return;
                    case FrameType.Abort:
                        throw (await reader.ReadBodyAsync<Abort>(header, ct).ConfigureAwait(false)).ToException();
                    default:
                        throw new ProtocolException(ProtocolError.UnexpectedFrame, "frame type", header.Type.ToString(),
                            $"the receiver sent {header.Type} while the sender expects Ack, Resumed or Abort");
                }
            }
        }
        catch (Exception e)
        {
            resumed.TrySetException(e);
            throw;
        }
    }

    private static void FailIfPeerEnded(TaskCompletionSource<Resumed> resumed, Task ackLoop)
    {
        if (ackLoop.IsFaulted) ackLoop.GetAwaiter().GetResult();
        if (ackLoop.IsCompleted && !resumed.Task.IsCompleted)
            throw new IOException("the receiver closed the connection");
    }

    private async Task WaitRoundAsync(TimeSpan until, CancellationToken ct)
    {
        TimeSpan wait = until - _clock.Elapsed;
        if (wait <= TimeSpan.Zero) return;
        await Task.WhenAny(_launch.Task, Task.Delay(wait, ct)).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
    }

    /// <summary>Digest of the paused source's memory, hashed now from the bytes themselves (chunks in parallel).</summary>
    private static byte[] DigestOf(GuestMemoryMap memory, long pageLimit = long.MaxValue)
    {
        long pages = Math.Min(pageLimit, memory.PageCount);
        var digest = new MemoryDigest(pages, memory.PageSize);
        const int chunkPages = 4096;
        var chunks = new List<(long First, int Count)>();
        for (long first = 0; first < pages;)
        {
            int count = (int)Math.Min(Math.Min(chunkPages, memory.ContiguousPages(first)), pages - first);
            chunks.Add((first, count));
            first += count;
        }
        Parallel.ForEach(chunks, c => digest.HashPages(c.First, memory.Pages(c.First, c.Count)));
        return digest.Compute();
    }

    private static string Describe(Exception e) => e switch
    {
        ProtocolException p when p.FromPeerAbort => $"the receiver aborted: {p.Message}",
        ProtocolException p => $"protocol error: {p.Message}",
        IOException or SocketException => $"connection to the receiver lost: {e.Message}",
        TimeoutException => e.Message,
        _ => e.Message,
    };

    private ulong Now() => (ulong)(_clock.ElapsedTicks * (1e9 / Stopwatch.Frequency));

    private static double TicksToMs(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}
