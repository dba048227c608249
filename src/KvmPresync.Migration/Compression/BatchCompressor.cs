using System.Diagnostics;
using KvmPresync.Wire;

namespace KvmPresync.Migration.Compression;

/// <summary>
/// Writes one PageBatch raw or compressed, as the <see cref="CompressionChooser"/> decides, and counts what it did. A
/// compressed batch is gathered from guest memory into one staging buffer (the codecs want contiguous input), compressed
/// into a second, and sent from there: it is a copy, so it never applies to MSG_ZEROCOPY sends (the sender does not offer
/// CompressedPages with <c>--zero-copy</c>). Batches the receiver did not agree to compress, batches without Full pages and
/// batches over <see cref="WireLimits.MaxCompressedBatchBytes"/> go raw. One per sender run; its callers do not overlap.
/// <para>
/// Compressed batches are pipelined over <see cref="Slots"/> slots (staging and output buffers and codec state each):
/// <see cref="WriteAsync"/> gathers the batch into a free slot and returns; the slot's task compresses it on the thread
/// pool — in parallel with the other slots' batches and with the previous batch's wait for the link — then waits for the
/// previous batch's write, so frames leave in order, and writes it. <see cref="DrainAsync"/> waits for the last one: the
/// encoder calls it before a send returns, so a page counts as sent only once the transport took it.
/// </para>
/// </summary>
internal sealed class BatchCompressor : IDisposable
{
    private readonly CompressionChooser _chooser;
    private readonly CompressionMode _mode;
    private readonly string? _disabled;
    private readonly Slot[] _slots;
    private readonly object _gate = new(); // the chooser and the counters: slot tasks report from pool threads
    private int _next;
    private Task _last = Task.CompletedTask; // the last batch's compress-and-write
    private long _raw, _lz4, _zstd, _payload, _payloadWire, _lz4In, _lz4Out, _zstdIn, _zstdOut, _notSmaller, _probes;
    private long _compressTicks;
    private int _compressing;      // slots compressing now
    private long _busyTicks;       // wall-clock ticks with at least one slot compressing
    private long _busyTicksAtLastBatch;
    private long _lastBusyEvent;
    private bool _negotiated = true;

    /// <summary>One batch in the pipeline: its gathered pages, its compressed output, its codec state, its task.</summary>
    private sealed class Slot : IDisposable
    {
        public byte[] Staging = [];
        public byte[] Output = [];
        public PageDescriptor[] Descriptors = [];
        public readonly PageCompression Codecs = new(); // zstd's compressor is not thread-safe: one per slot
        public Task Done = Task.CompletedTask;
        public void Dispose() => Codecs.Dispose();
    }

    /// <summary>Batches compressed at once (and so at most in flight): the host's cores, 2 … 4.</summary>
    public static int Slots { get; } = Math.Clamp(Environment.ProcessorCount, 2, 4);

    /// <param name="disabledBecause">Why compression cannot be used at all (e.g. zero-copy), or null.</param>
    public BatchCompressor(CompressionMode mode, double? linkBytesPerSecond, string? disabledBecause = null)
    {
        _mode = mode;
        _disabled = mode == CompressionMode.Off ? null : disabledBecause;
        _chooser = new CompressionChooser(_disabled is null ? mode : CompressionMode.Off, linkBytesPerSecond);
        _slots = new Slot[Slots];
        for (int i = 0; i < _slots.Length; i++) _slots[i] = new Slot();
        if (Offered) _ = PageCompression.Warm(); // the codecs' JIT now, while the handshake runs, not in the first batches
    }

    public CompressionChooser Chooser => _chooser;

    /// <summary>
    /// How many times faster than raw a batch of <paramref name="rawBytes"/> is expected to move with the codec the next batch
    /// would use (raw / expected seconds, from the chooser's measured ratios, compress costs and link rate); 1 when
    /// compression is off, not negotiated or not yet measured. The sync engine scales the link rate by it, so the
    /// convergence policy and the readiness estimate count what compressed pages really take on the wire.
    /// </summary>
    /// <param name="cpuScale">
    /// The compressor's measured speeds taken that many times higher (<see cref="CompressionChooser.CpuFreed"/>): the speed-up
    /// once the guest is paused.
    /// </param>
    public double ExpectedSpeedup(long rawBytes, double cpuScale = 1)
    {
        if (!Offered || !_negotiated || rawBytes <= 0) return 1;
        lock (_gate)
        {
            PageCodec codec = ExpectedCodec(rawBytes, cpuScale);
            if (codec == PageCodec.None) return 1;
            return _chooser.ExpectedSeconds(PageCodec.None, rawBytes) is { } raw && _chooser.ExpectedSeconds(codec, rawBytes, cpuScale) is { } with && with > 0
                ? Math.Max(1, raw / with)
                : 1;
        }
    }

    /// <summary>The guest paused and gave the compressor <paramref name="factor"/> times the CPU it had (<see cref="CompressionChooser.CpuFreed"/>).</summary>
    public void CpuFreed(double factor)
    {
        lock (_gate) _chooser.CpuFreed(factor);
    }

    /// <summary>
    /// Page bytes per second the pipeline gathers and compresses with the codec a batch of <paramref name="rawBytes"/> would
    /// use (the chooser's measured speed); null when batches go raw or nothing is measured yet.
    /// </summary>
    public double? ExpectedCompressBytesPerSecond(long rawBytes)
    {
        if (!Offered || !_negotiated || rawBytes <= 0) return null;
        lock (_gate)
        {
            PageCodec codec = ExpectedCodec(rawBytes);
            return codec == PageCodec.None ? null : _chooser.BytesPerSecond(codec);
        }
    }

    /// <summary>The codec the next batch of <paramref name="rawBytes"/> would use, probes aside; under <see cref="_gate"/>.</summary>
    private PageCodec ExpectedCodec(long rawBytes, double cpuScale = 1) => _mode switch
    {
        CompressionMode.Lz4 => PageCodec.Lz4,
        CompressionMode.Zstd => PageCodec.Zstd,
        _ => _chooser.Best(rawBytes, cpuScale),
    };

    /// <summary>Whether the sender offers <see cref="HelloOptions.CompressedPages"/>.</summary>
    public bool Offered => _mode != CompressionMode.Off && _disabled is null;

    /// <summary>
    /// Sends the batch: <paramref name="payloads"/> hold one page per Full descriptor, in order (views into guest memory).
    /// A raw batch is written before this returns; a compressed one is gathered, and compresses and writes behind it.
    /// </summary>
    public async ValueTask WriteAsync(FrameWriter writer, ulong round, ReadOnlyMemory<PageDescriptor> descriptors,
        IReadOnlyList<ReadOnlyMemory<byte>> payloads, CancellationToken ct)
    {
        int pageSize = writer.Layout!.PageSize;
        long rawBytes = (long)payloads.Count * pageSize;
        if (payloads.Count == 0)
        {
            await DrainAsync().ConfigureAwait(false);
            await writer.WritePageBatchAsync(round, descriptors, payloads, ct).ConfigureAwait(false);
            return;
        }
        _negotiated = writer.Options.HasFlag(HelloOptions.CompressedPages);
        // auto: raw until the codecs are JIT-warm (PageCompression.Warm, started with the sender), so that neither the
        // batches nor the chooser's estimates pay a cold codec
        bool ready = _mode != CompressionMode.Auto || PageCompression.Warm().IsCompleted;
        PageCodec codec = PageCodec.None;
        bool probe = false;
        if (_negotiated && ready && rawBytes <= WireLimits.MaxCompressedBatchBytes)
            lock (_gate)
            {
                codec = _chooser.Choose(rawBytes);
                probe = _chooser.LastWasProbe;
                if (probe) _probes++;
            }
        if (codec == PageCodec.None)
        {
            await DrainAsync().ConfigureAwait(false);
            long sendStart = Stopwatch.GetTimestamp();
            await writer.WritePageBatchAsync(round, descriptors, payloads, ct).ConfigureAwait(false);
            lock (_gate)
            {
                _raw++;
                _payload += rawBytes;
                _payloadWire += rawBytes;
                _chooser.Sent(FrameBytes(rawBytes, descriptors.Length), (double)(Stopwatch.GetTimestamp() - sendStart) / Stopwatch.Frequency);
            }
            return;
        }

        Slot slot = _slots[_next];
        _next = (_next + 1) % _slots.Length;
        await slot.Done.ConfigureAwait(false); // the slot's previous batch has been written (or this rethrows why not)
        long gatherStart = Stopwatch.GetTimestamp();
        if (slot.Staging.Length < rawBytes) slot.Staging = new byte[rawBytes];
        int at = 0;
        for (int i = 0; i < payloads.Count; i++)
        {
            ReadOnlySpan<byte> page = payloads[i].Span;
            page.CopyTo(slot.Staging.AsSpan(at));
            at += page.Length;
        }
        if (slot.Descriptors.Length < descriptors.Length) slot.Descriptors = new PageDescriptor[Math.Max(descriptors.Length, WireLimits.MaxPagesPerBatch)];
        descriptors.Span.CopyTo(slot.Descriptors);
        long gatherTicks = Stopwatch.GetTimestamp() - gatherStart;
        slot.Done = _last = CompressAndWriteAsync(slot, _last, writer, round, descriptors.Length, (int)rawBytes, pageSize, codec, probe, gatherTicks, ct);
    }

    /// <summary>Waits until the last compressed batch's write has completed (rethrows its failure).</summary>
    public Task DrainAsync() => _last;

    /// <summary>After a failed send: forgets the batches in flight (their failures are observed, not rethrown later on another connection).</summary>
    public void Abandon()
    {
        foreach (Slot slot in _slots)
        {
            Task t = slot.Done;
            slot.Done = Task.CompletedTask;
            _ = t.ContinueWith(static x => _ = x.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
        _last = Task.CompletedTask;
    }

    private async Task CompressAndWriteAsync(Slot slot, Task previous, FrameWriter writer, ulong round, int descriptorCount, int rawBytes,
        int pageSize, PageCodec codec, bool probe, long gatherTicks, CancellationToken ct)
    {
        int Compress()
        {
            int bound = PageCompression.MaxCompressedLength(codec, rawBytes);
            if (slot.Output.Length < bound) slot.Output = new byte[bound];
            lock (_gate) Busy(+1);
            try
            {
                return slot.Codecs.Compress(codec, slot.Staging.AsSpan(0, rawBytes), slot.Output);
            }
            finally
            {
                lock (_gate) Busy(-1);
            }
        }
        // Nothing ahead of it: compress here (a hop to the thread pool would only add latency — a paused delta of a few
        // pages is one batch). Behind another batch: on the pool, side by side with it.
        int compressed = previous.IsCompleted ? Compress() : await Task.Run(Compress, ct).ConfigureAwait(false);
        bool smaller = compressed < rawBytes;
        lock (_gate)
        {
            // the cost is wall-clock time with at least one batch compressing, since the last batch finished: batches
            // compressed side by side share it, so the chooser sees what the pipeline achieves on this host's free cores
            long ticks = _busyTicks - _busyTicksAtLastBatch + gatherTicks;
            _busyTicksAtLastBatch = _busyTicks;
            _compressTicks += ticks;
            _chooser.Compressed(codec, rawBytes, compressed, (double)ticks / Stopwatch.Frequency, probe);
            _payload += rawBytes;
            if (!smaller)
            {
                _notSmaller++;
                _raw++;
                _payloadWire += rawBytes;
            }
            else
            {
                if (codec == PageCodec.Lz4) { _lz4++; _lz4In += rawBytes; _lz4Out += compressed; }
                else { _zstd++; _zstdIn += rawBytes; _zstdOut += compressed; }
                _payloadWire += compressed + PageBatch.CompressedFieldsLength;
            }
        }
        await previous.ConfigureAwait(false); // frames leave in order
        ReadOnlyMemory<PageDescriptor> descriptors = slot.Descriptors.AsMemory(0, descriptorCount);
        long sendStart = Stopwatch.GetTimestamp();
        long frameBytes;
        if (smaller)
        {
            await writer.WriteCompressedPageBatchAsync(round, descriptors, codec, slot.Output.AsMemory(0, compressed), ct).ConfigureAwait(false);
            frameBytes = FrameBytes(compressed + PageBatch.CompressedFieldsLength, descriptorCount);
        }
        else
        {
            // not smaller: the gathered pages go raw (the same bytes the codec saw)
            var pages = new ReadOnlyMemory<byte>[rawBytes / pageSize];
            for (int i = 0; i < pages.Length; i++) pages[i] = slot.Staging.AsMemory(i * pageSize, pageSize);
            await writer.WritePageBatchAsync(round, descriptors, pages, ct).ConfigureAwait(false);
            frameBytes = FrameBytes(rawBytes, descriptorCount);
        }
        lock (_gate) _chooser.Sent(frameBytes, (double)(Stopwatch.GetTimestamp() - sendStart) / Stopwatch.Frequency);
    }

    /// <summary>A slot starts (+1) or ends (-1) compressing; under <see cref="_gate"/>.</summary>
    private void Busy(int change)
    {
        long now = Stopwatch.GetTimestamp();
        if (_compressing > 0) _busyTicks += now - _lastBusyEvent;
        _lastBusyEvent = now;
        _compressing += change;
    }

    private static long FrameBytes(long wire, int descriptors) =>
        wire + PageBatch.FixedLength + FrameHeader.Size + (long)descriptors * PageDescriptor.WireLength;

    public CompressionStats Stats()
    {
        lock (_gate) return new()
        {
            Mode = _mode,
            DisabledBecause = _disabled ?? (_mode != CompressionMode.Off && !_negotiated ? "the receiver did not accept CompressedPages (protocol 1.3)" : null),
            RawBatches = _raw,
            Lz4Batches = _lz4,
            ZstdBatches = _zstd,
            PayloadBytes = _payload,
            PayloadWireBytes = _payloadWire,
            Lz4InBytes = _lz4In,
            Lz4OutBytes = _lz4Out,
            ZstdInBytes = _zstdIn,
            ZstdOutBytes = _zstdOut,
            NotSmaller = _notSmaller,
            Probes = _probes,
            CompressMs = _compressTicks * 1000.0 / Stopwatch.Frequency,
            LinkBytesPerSecond = _chooser.LinkBytesPerSecond,
            Lz4Ratio = _chooser.Ratio(PageCodec.Lz4),
            Lz4BytesPerSecond = _chooser.BytesPerSecond(PageCodec.Lz4),
            ZstdRatio = _chooser.Ratio(PageCodec.Zstd),
            ZstdBytesPerSecond = _chooser.BytesPerSecond(PageCodec.Zstd),
        };
    }

    public void Dispose()
    {
        foreach (Slot slot in _slots) slot.Dispose();
    }
}
