using System.Diagnostics;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Memory;
using KvmPresync.Migration.Compression;

namespace KvmPresync.Migration;

/// <summary>
/// The state one sender run carries from phase to phase: the source, the engine (pending set and policies), the
/// batch encoder, the channel, the clock, the round counter and the round records, and the figures the result
/// reports. Each phase is a small unit over this (<see cref="SyncPhase"/>, <see cref="FinalLivePhase"/>,
/// <see cref="PausedPhase"/>).
/// </summary>
internal sealed class SenderRun
{
    private readonly Action<RoundRecord>? _roundCompleted;
    private readonly List<RoundRecord> _rounds = [];
    private readonly List<RoundRecord> _deferred = [];
    private readonly long _syncStartProgress;
    private readonly TimeSpan _syncStart;
    private readonly byte[] _digestScratch = new byte[PageHashTree.Size];
    private readonly GuestSample _syncStartSample;

    public SenderRun(IMigrationSource source, PresyncOptions options, SenderChannel channel, Stopwatch clock, Action<RoundRecord>? roundCompleted)
    {
        Source = source;
        Options = options;
        Channel = channel;
        Clock = clock;
        _roundCompleted = roundCompleted;
        Memory = source.Memory;
        // zero pages are priced at a header, not a page: the receiver's fresh memory already holds them
        Engine = new SyncEngine(Memory.PageCount, Memory.PageSize, options.Engine with { HeaderBytesPerPage = Wire.PageDescriptor.WireLength },
            NonZeroPages.Scan(Memory));
        Compressor = CompressionSetup.For(options);
        Encoder = new PageBatchEncoder(Memory, channel.Writer, options.BatchPages, Compressor);
        NeverSent = new DirtyBitmap(Memory.PageCount);
        NeverSent.SetAll();
        Harvest = new DirtyBitmap(Memory.PageCount);
        Send = new DirtyBitmap(Memory.PageCount);
        _syncStart = clock.Elapsed;
        _syncStartSample = GuestSample.Of(source, _syncStart);
        _syncStartProgress = _syncStartSample.Progress;
    }

    /// <summary>The paused source's state is saved on this thread while the final delta goes out (<see cref="PausedPhase"/>).</summary>
    public StandbyCall StateSave { get; } = new("switchover-state");

    public IMigrationSource Source { get; }
    public GuestMemoryMap Memory { get; }
    public PresyncOptions Options { get; }
    public SenderChannel Channel { get; private set; }
    public Stopwatch Clock { get; }
    public SyncEngine Engine { get; }
    public PageBatchEncoder Encoder { get; }

    /// <summary>Raw / LZ4 / zstd per batch (<see cref="PresyncOptions.Compression"/>).</summary>
    public BatchCompressor Compressor { get; }

    /// <summary>Scratch bitmap each harvest is read into (then merged into the engine's pending set).</summary>
    public DirtyBitmap Harvest { get; }

    /// <summary>
    /// The pace the live rounds after launch, sent back to back, move pages at, measured on the sync rounds past the rate
    /// limiter's burst: what the readiness estimate times its modelled rounds with (the convergence policy decides with
    /// <see cref="SyncEngine.SendRate"/>).
    /// </summary>
    public SendRateMeter LiveRoundRate { get; } = new();

    /// <summary>The pages chosen for the current round.</summary>
    public DirtyBitmap Send { get; }

    /// <summary>The next round's id.</summary>
    public long Round { get; set; }

    public SenderPhase Phase { get; set; } = SenderPhase.Handshake;

    /// <summary>The session negotiated the hash-tree memory digest (protocol 1.3 <c>TreeDigest</c>); else the flat one.</summary>
    public bool TreeDigest { get; set; }

    /// <summary>Harvest-clock time of the last harvest (the convergence policy's clock).</summary>
    public TimeSpan LastHarvestTime { get; set; }

    /// <summary>Now on the harvest clock: the last harvest's time plus the run clock since it.</summary>
    public TimeSpan HarvestClockNow => LastHarvestTime + (Clock.Elapsed - _harvestedAt);

    /// <summary>What the last readiness estimate was made from (null before the first sync round): what the launch's own check of its target reads.</summary>
    public ReadinessInputs? ReadinessInputs => Volatile.Read(ref _readinessBasis)?.Inputs;

    /// <summary>RTT of the last acknowledged sync round.</summary>
    public TimeSpan? LastRtt { get; set; }

    /// <summary>What one harvest costs (running mean): a live round's overhead besides its bytes.</summary>
    public TimeSpan HarvestCost { get; private set; }

    /// <summary>Times the guest's bursts of writes (<see cref="PresyncOptions.TimeBursts"/>) until the pause; null when off or the source cannot be looked at.</summary>
    public BurstSampler? Bursts { get; init; }

    /// <summary>The burst clock's forecast now; null without one.</summary>
    public BurstForecast? BurstForecast() => Bursts?.Forecast();

    /// <summary>The last readiness estimate published (after a sync round); null before the first sync round.</summary>
    public ReadinessEstimate? Readiness { get; private set; }

    /// <summary>The last round's estimate inputs and the run-clock time of that round's harvest.</summary>
    /// <param name="CpuFreedScale">How many times the migration's CPU grows when the guest pauses (<see cref="GuestPaused"/>).</param>
    private sealed record ReadinessBasis(ReadinessInputs Inputs, TimeSpan HarvestedAt, double PayloadSpeedup, double CpuFreedScale);

    private ReadinessBasis? _readinessBasis;
    private TimeSpan _harvestedAt; // run clock at the last harvest

    /// <summary>Estimates the switchover as if launched right after this round, <paramref name="pendingBytes"/> left to move; published as <see cref="Readiness"/>.</summary>
    public ReadinessEstimate EstimateReadiness(long pendingBytes, long heldBytes = 0)
    {
        // not measured yet (no sync round moved enough past the burst): the estimate times the rounds at the policy's rate
        double? liveRound = LiveRoundRate.BytesPerSecond is { } r ? ConvergenceInput.LiveRate(r * 8, Engine.EffectiveLinkBitsPerSecond) : null;
        double? guestCpus = GuestCpusDuringSync();
        long batchBytes = (long)Options.BatchPages * Memory.PageSize;
        // paused, the compressor gets the CPU the guest gives back: where the CPU bounded the live rounds (their own pace,
        // past the rate limiter's burst, below the link's), the codec that wins then sets the link's side of the paused pace
        bool cpuBound = liveRound < Engine.EffectiveLinkBitsPerSecond;
        double cpuFreed = cpuBound ? ReadinessEstimator.CpuFreedScale(guestCpus, Environment.ProcessorCount) : 1;
        // (unscaled it is the speed-up the engine's effective link already holds, set from the same chooser after this round)
        double pausedLink = cpuFreed > 1 ? Engine.Options.LinkBitsPerSecond * Compressor.ExpectedSpeedup(batchBytes, cpuFreed) : Engine.EffectiveLinkBitsPerSecond;
        var basis = new ReadinessBasis(new ReadinessInputs
        {
            PendingBytes = pendingBytes,
            HeldBytes = heldBytes,
            DirtyBytesPerSecond = Engine.DirtyRate.MeanBytesPerSecond,
            WorkingSet = Engine.WorkingSet,
            NewlyPendingBytesPerSecond = Engine.DirtyRate.MeanNewlyPendingBytesPerSecond,
            LinkBitsPerSecond = Engine.EffectiveLinkBitsPerSecond,
            LiveTransferBitsPerSecond = Engine.LiveTransferBitsPerSecond,
            LiveRoundBitsPerSecond = liveRound,
            PausedTransferBitsPerSecond = ReadinessEstimator.PausedRate(Engine.LiveTransferBitsPerSecond, Engine.EffectiveLinkBitsPerSecond, guestCpus,
                Environment.ProcessorCount, pausedLink),
            LaunchTarget = Engine.Options.LaunchTarget,
            Rtt = LastRtt,
            RoundOverhead = HarvestCost,
            HarvestTime = LastHarvestTime,
            SwitchoverCost = Options.SwitchoverCost,
            StopCheckInterval = BatchTime,
            CompressBytesPerSecond = Compressor.ExpectedCompressBytesPerSecond(batchBytes),
        }, _harvestedAt, Engine.PayloadSpeedup, cpuFreed);
        Volatile.Write(ref _sendStartBytes, BytesWritten); // what is pending now excludes what was sent so far
        Volatile.Write(ref _readinessBasis, basis);
        return Readiness = ReadinessNow()!;
    }

    /// <summary>
    /// The guest paused: the compressor's codec choice counts the CPU the guest gives back, as the last readiness estimate did
    /// (<see cref="ReadinessEstimator.CpuFreedScale"/> of the CPUs its vCPU used over the sync period; nothing read here, in
    /// the downtime) — where the CPU bounded the live rounds. Where they reached the link's pace the choice stands: a few
    /// batches of audio's delta that went zstd on the scaled figures took 1.3–2.6 ms instead of 0.4–0.9 (29 Nov 2026).
    /// </summary>
    public void GuestPaused() => Compressor.CpuFreed(Volatile.Read(ref _readinessBasis)?.CpuFreedScale ?? 1);

    /// <summary>Host CPUs the guest's vCPU used over the sync period so far (<see cref="GuestWindow.OnCpuPercent"/>); null when the source cannot tell.</summary>
    private double? GuestCpusDuringSync() =>
        GuestWindow.Between(_syncStartSample, GuestSample.Of(Source, Clock.Elapsed)).OnCpuPercent / 100;

    /// <summary>
    /// A sync round's harvest and plan, before its send: the estimate's basis moves to this harvest, with what is pending now
    /// (<paramref name="pendingBytes"/>), so that a launch during the send counts what the round has sent so far as no longer
    /// pending and what the guest dirtied since this harvest, not since the last round's. A round of a guest that outruns the
    /// link lasts most of a second: the last round's basis then counts its pages twice, once as dirtied and once as pending.
    /// </summary>
    public void RebaseReadiness(long pendingBytes, long heldBytes)
    {
        if (Volatile.Read(ref _readinessBasis) is not { } b) return;
        Volatile.Write(ref _sendStartBytes, BytesWritten);
        Volatile.Write(ref _readinessBasis, b with
        {
            Inputs = b.Inputs with { PendingBytes = pendingBytes, HeldBytes = heldBytes, HarvestTime = LastHarvestTime },
            HarvestedAt = _harvestedAt,
        });
    }

    private long _sendStartBytes; // BytesWritten when the basis was last set: at a sync round's harvest (its send starts) and after its send

    /// <summary>
    /// Page bytes still pending while a sync round sends: those pending at its harvest less what it has written since
    /// (<paramref name="wireBytesSent"/>, wire bytes, which stand for <paramref name="payloadSpeedup"/> times as many page bytes).
    /// </summary>
    internal static long PendingDuringSend(long pendingAtHarvest, long wireBytesSent, double payloadSpeedup) =>
        Math.Max(0, pendingAtHarvest - (long)(Math.Max(0, wireBytesSent) * Math.Max(1, payloadSpeedup)));

    /// <summary>True while a sync round's pages are being sent (a launch then waits for the batches under way).</summary>
    public bool SyncSending { get => Volatile.Read(ref _syncSending); set => Volatile.Write(ref _syncSending, value); }
    private bool _syncSending;

    /// <summary>
    /// What a launch that comes while a sync round sends waits for: the batch being written and the one compressed behind it,
    /// about 1.5 batches at the live transfer rate (measured 1.8–3.6 ms on the movie guest, 256-page batches).
    /// </summary>
    public TimeSpan SyncSendTail => 1.5 * BatchTime;

    /// <summary>One batch of pages at the live transfer rate.</summary>
    public TimeSpan BatchTime => TimeSpan.FromSeconds(Options.BatchPages * Engine.Cost.FullPageBytes * 8 / Engine.LiveTransferBitsPerSecond);

    /// <summary>
    /// "If launched now": the last round's estimate with what the guest dirtied since that round's harvest, and the end of the
    /// sync round under way (<paramref name="syncSending"/>: whether one was sending then; default: whether one is now); null
    /// before the first sync round. Any thread may call it (it reads only the last round's inputs and the clock).
    /// </summary>
    public ReadinessEstimate? ReadinessNow(bool? syncSending = null)
    {
        if (Volatile.Read(ref _readinessBasis) is not { } b) return null;
        bool sending = syncSending ?? SyncSending;
        ReadinessEstimate e = ReadinessEstimator.Estimate(Engine.Convergence, b.Inputs with
        {
            PendingBytes = sending ? PendingDuringSend(b.Inputs.PendingBytes, BytesWritten - Volatile.Read(ref _sendStartBytes), b.PayloadSpeedup) : b.Inputs.PendingBytes,
            // idle since the last sync round's send, the limiter's bucket is full; in page bytes, as the estimate counts them
            LinkBurstBytes = sending || Channel.Bucket is not { } bucket ? 0 : (long)(bucket.BurstBytes * Math.Max(1, b.PayloadSpeedup)),
            SinceHarvest = Clock.Elapsed - b.HarvestedAt,
            // the clock's forecast now; the working-set curve as of the round (the engine's own may be changing on another thread)
            Bursts = BurstTimedWrites.Of(BurstForecast(), Engine.Cost.FullPageBytes, b.Inputs.WorkingSet ?? DirtyWorkingSet.Steady(b.Inputs.DirtyBytesPerSecond)),
            // what the guest dirtied since that harvest, as the burst clock last saw it
            DirtiedSinceHarvestBytes = DirtiedSinceHarvestBytes(b.Inputs.HarvestTime),
        });
        // the estimator counts page bytes against the link rate scaled by the compression speed-up: on the wire they shrink by it
        double tail = sending ? SyncSendTail.TotalMilliseconds : 0;
        return e with { LaunchToResumeMs = e.LaunchToResumeMs + tail, Bytes = (long)(e.Bytes / Math.Max(1, b.PayloadSpeedup)) };
    }

    public long SyncBytes { get; set; }
    public long? InitialCopyBytes { get; set; }

    /// <summary>From the start of sync until the receiver acked the round that completed the first pass over memory.</summary>
    public double? InitialCopyMs { get; set; }

    /// <summary>When sync began, on <see cref="Clock"/>.</summary>
    public TimeSpan SyncStarted => _syncStart;
    public double? EarlyProgressRate { get; private set; }
    public double SyncProgressRate { get; private set; }

    /// <summary>The guest's work and vCPU figures over the sync period; set at launch (<see cref="EndSyncProgress"/>).</summary>
    public GuestWindow? SyncWindow { get; private set; }
    public int FinalLiveRounds { get; set; }

    /// <summary>Wire bytes the final live rounds wrote, and the time their harvests took (set by <see cref="FinalLivePhase"/>).</summary>
    public long FinalLiveBytes { get; set; }
    public TimeSpan FinalLiveHarvestTime { get; set; }

    /// <summary>How long the last <see cref="HarvestNow"/> took.</summary>
    public TimeSpan LastHarvestTook { get; private set; }
    public IReadOnlyList<RoundRecord> Rounds => _rounds;

    /// <summary>Pages the first pass over memory has not dealt with yet (for <see cref="InitialCopyBytes"/>).</summary>
    public DirtyBitmap NeverSent { get; }

    /// <summary>The resumable session (16 random bytes) when the receiver accepted resumable sessions; null otherwise.</summary>
    public byte[]? SessionId { get; set; }

    /// <summary>The session's generation on the current connection (0 = the first).</summary>
    public uint Generation { get; set; }

    public List<ReconnectRecord> Reconnects { get; } = [];

    /// <summary>Pages the last reconnection marked that have not been sent again yet; null when none are left.</summary>
    private DirtyBitmap? _resend;
    private long _resendBytes;
    private double? _outageToReport;
    private bool _firstRoundAfterResume;

    /// <summary>The data streams (protocol 1.3 MultiStream) when more than one connection carries pages; null: the main one only.</summary>
    public SenderStreams? Streams { get; private set; }

    private long _closedStreamBytes; // what data streams closed by a reconnection had sent

    /// <summary>Bytes every connection of the run took so far (the main connection's writer and the data streams').</summary>
    public long BytesWritten => Channel.Writer.BytesWritten + (Streams?.DataBytesWritten ?? 0) + _closedStreamBytes;

    public void UseStreams(SenderStreams streams) => Streams = streams;

    /// <summary>Closes the data streams; the run continues on the main connection alone (after a reconnection). True when there were any.</summary>
    public async Task<bool> CloseStreamsAsync()
    {
        if (Streams is not { } streams) return false;
        Streams = null;
        _closedStreamBytes += streams.DataBytesWritten;
        await streams.CloseAsync().ConfigureAwait(false);
        return true;
    }

    /// <summary>After a reconnection: the round records and the sends go to the new connection.</summary>
    public void UseChannel(SenderChannel channel)
    {
        Channel = channel;
        Encoder.UseWriter(channel.Writer);
    }

    /// <summary>
    /// The new connection resumed (<paramref name="receiverHashes"/> given) or restarted the session (null: the receiver
    /// has an all-zero destination): mark every page the receiver lacks as pending and start counting the bytes resent.
    /// Returns the pages marked.
    /// </summary>
    public long BeginResend(ulong[]? receiverHashes)
    {
        CloseResend(caughtUp: false);
        var resend = new DirtyBitmap(Memory.PageCount);
        long marked;
        if (receiverHashes is null)
        {
            Encoder.ForgetSent();
            resend.SetAll();
            marked = Memory.PageCount;
        }
        else
            marked = Encoder.AdoptReceiverHashes(receiverHashes, resend);
        Engine.Pending.Or(resend);
        resend.Or(Engine.Pending); // and what was still pending (incl. the backlog dirtied before the loss)
        _resend = resend;
        _firstRoundAfterResume = true;
        _resendBytes = 0;
        return marked;
    }

    public void AddReconnect(ReconnectRecord record)
    {
        Reconnects.Add(record);
        _outageToReport = record.OutageMs;
    }

    /// <summary>After a sync round: pages sent (or held back) leave the resend set; its bytes count as resent.</summary>
    public RoundRecord AfterSyncRound(RoundRecord record, long bytes)
    {
        record = record with { ReconnectOutageMs = _outageToReport };
        _outageToReport = null;
        if (_resend is not { } resend) return record;
        _resendBytes += bytes;
        if (_firstRoundAfterResume) resend.Or(Harvest); // what the guest changed during the outage
        _firstRoundAfterResume = false;
        resend.AndNot(Send);
        resend.AndNot(Engine.Held);
        long left = resend.Count();
        if (left == 0) CloseResend(caughtUp: true);
        return record with { ResendPendingPages = left };
    }

    /// <summary>Closes the count of the last reconnection's resent bytes (caught up, launch, or another loss).</summary>
    public void CloseResend(bool caughtUp)
    {
        if (_resend is null || Reconnects.Count == 0) { _resend = null; return; }
        Reconnects[^1] = Reconnects[^1] with { BytesResent = _resendBytes, CaughtUp = caughtUp };
        _resend = null;
    }

    /// <summary>Samples the guest's work rate over the first <see cref="PresyncSender.ProgressSampleWindow"/> of sync.</summary>
    public void SampleEarlyProgress()
    {
        TimeSpan inSync = Clock.Elapsed - _syncStart;
        if (EarlyProgressRate is null && inSync >= PresyncSender.ProgressSampleWindow)
            EarlyProgressRate = (Source.ProgressTotal - _syncStartProgress) / inSync.TotalSeconds;
    }

    /// <summary>Closes the sync period's progress figure (at launch).</summary>
    public void EndSyncProgress()
    {
        SampleEarlyProgress();
        GuestSample end = GuestSample.Of(Source, Clock.Elapsed);
        SyncWindow = GuestWindow.Between(_syncStartSample, end);
        SyncProgressRate = (end.Progress - _syncStartProgress) / Math.Max(1e-3, (end.At - _syncStart).TotalSeconds);
    }

    private DirtyBitmap? _probe;        // pages the short-window probes harvested, merged into the next harvest
    private bool _probed;               // _probe holds pages not merged yet (no scan of it on every harvest)
    private ulong _probeProgress;

    /// <summary>Picks where in a round the short-window probe goes (random, so a periodic guest is not always probed at one phase).</summary>
    public Random ProbePlacement { get; } = new();

    /// <summary>
    /// A probe during sync: harvests the dirty log now into a side bitmap that the next <see cref="HarvestNow"/> merges back
    /// (no page is lost; the round still sees its whole interval). Two probes a short window apart measure what the guest
    /// dirties within that window: the second one's <see cref="DirtyHarvest.DirtyPages"/>.
    /// </summary>
    public DirtyHarvest ProbeHarvest()
    {
        _probe ??= new DirtyBitmap(Memory.PageCount);
        DirtyHarvest h = Source.DirtyLog.Harvest(_probe);
        _probed = true;
        _probeProgress += h.Progress;
        Volatile.Write(ref _probeTaken, new ProbeTaken(h.Time, _probe.Count()));
        return h;
    }

    /// <summary>The last probe since the last harvest: when (harvest clock) and the pages the side bitmap holds since that harvest.</summary>
    internal sealed record ProbeTaken(TimeSpan Time, long Pages);

    private ProbeTaken? _probeTaken;

    private double? DirtiedSinceHarvestBytes(TimeSpan harvestTime) =>
        DirtiedSince(Bursts?.LastLook(), harvestTime, LastHarvestTime, Volatile.Read(ref _probeTaken), Engine.Cost.FullPageBytes);

    /// <summary>
    /// Bytes of the pages the guest dirtied since the harvest at <paramref name="harvestTime"/>: those the burst clock's last
    /// <paramref name="look"/> counted, plus those a <paramref name="probe"/> took since that harvest (a look counts only what
    /// came after the probe's harvest). Null when that is not known: no look, a harvest since (<paramref name="lastHarvestTime"/>
    /// is a later one), or a look older than the harvest or the probe.
    /// </summary>
    internal static double? DirtiedSince(DirtyPeek? look, TimeSpan harvestTime, TimeSpan lastHarvestTime, ProbeTaken? probe, double pageBytes)
    {
        if (look is not { } l || lastHarvestTime != harvestTime) return null;
        TimeSpan since = probe?.Time ?? harvestTime;
        return l.Time >= since ? (l.DirtyPages + (probe?.Pages ?? 0)) * pageBytes : null;
    }

    /// <summary>Harvests the source's dirty log into <see cref="Harvest"/> (cleared first), with any probe's pages merged in.</summary>
    public DirtyHarvest HarvestNow()
    {
        long start = Clock.ElapsedTicks;
        Harvest.Clear();
        DirtyHarvest h = Source.DirtyLog.Harvest(Harvest);
        if (_probed)
        {
            Harvest.Or(_probe!);
            _probe!.Clear();
            h = h with { DirtyPages = Harvest.Count(), Progress = h.Progress + _probeProgress };
            _probed = false;
            _probeProgress = 0;
            Volatile.Write(ref _probeTaken, null);
        }
        Encoder.OnHarvest(Harvest);
        Streams?.OnHarvest(Harvest);
        LastHarvestTime = h.Time;
        _harvestedAt = Clock.Elapsed;
        TimeSpan took = TimeSpan.FromTicks((long)((Clock.ElapsedTicks - start) * (TimeSpan.TicksPerSecond / (double)Stopwatch.Frequency)));
        LastHarvestTook = took;
        HarvestCost = HarvestCost == TimeSpan.Zero ? took : HarvestCost + (took - HarvestCost) / 8;
        return h;
    }

    /// <summary>Sends the planned pages (<see cref="Send"/>); a page leaves the pending set only once the transport took it.</summary>
    /// <param name="stopEarly">Asked once before each batch, with the planned pages not yet sent: true ends the send there (the unsent pages stay pending). Not asked over several streams.</param>
    public async Task<SendCounts> SendPlannedAsync(bool skipUnchanged, CancellationToken ct, Func<long, bool>? stopEarly = null)
    {
        SendCounts counts = Streams is { } streams
            ? await streams.SendAsync((ulong)Round, Send, skipUnchanged, ct).ConfigureAwait(false)
            : await Encoder.SendAsync((ulong)Round, Send, ct, skipUnchanged, stopEarly).ConfigureAwait(false);
        Engine.MarkSent(Send);
        // Bring the digest tree up to date with what this round sent, so the switchover re-hashes only the paused delta's nodes.
        if (TreeDigest && Phase != SenderPhase.Paused) Encoder.SentHashes.Compute(_digestScratch);
        return counts;
    }

    /// <summary>
    /// Records a round and raises the progress event — at once, or with <paramref name="deferEvent"/> only at
    /// <see cref="RaiseDeferred"/>: between the decision to pause and FinalState on the wire the event handler (a
    /// console line in the CLI) must not sit on the switchover's critical path.
    /// </summary>
    public void Report(RoundRecord record, bool deferEvent = false)
    {
        _rounds.Add(record);
        if (deferEvent) _deferred.Add(record);
        else _roundCompleted?.Invoke(record);
    }

    /// <summary>Raises the progress events held back by <see cref="Report"/>.</summary>
    public void RaiseDeferred()
    {
        foreach (RoundRecord r in _deferred) _roundCompleted?.Invoke(r);
        _deferred.Clear();
    }

    /// <summary>A round record from a plan and what was sent; the caller adds phase-specific signals with <c>with</c>.</summary>
    public RoundRecord Record(RoundPhase phase, long dirty, RoundPlan plan, SendCounts counts, long bytes, long windowBytes, double intervalMs)
    {
        BurstForecast? bursts = BurstForecast();
        return RoundRecord.FromPlan(Round, phase, Clock.Elapsed.TotalMilliseconds, dirty, plan, windowBytes, intervalMs, Engine.Predictor?.ActivePages ?? 0) with
        {
            SentPages = counts.Sent,
            SentBytes = bytes,
            SkippedUnchangedPages = counts.Unchanged,
            ZeroPages = counts.Zero,
            BurstPeriodMs = bursts?.Period.TotalMilliseconds,
            BurstLengthMs = bursts?.Length.TotalMilliseconds,
            BurstPages = bursts?.Pages,
            NextBurstInMs = bursts is { } f ? (f.NextStart(LastHarvestTime) - LastHarvestTime).TotalMilliseconds : null,
        };
    }

    /// <summary>Nanoseconds on the run's clock (the wire's timestamps).</summary>
    public ulong NowNs() => (ulong)(Clock.ElapsedTicks * (1e9 / Stopwatch.Frequency));

    public static double TicksToMs(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}
