using System.Diagnostics;
using KvmPresync.Wire;

namespace KvmPresync.Migration.Compression;

/// <summary>
/// Writes one PageBatch raw or compressed, as the <see cref="CompressionChooser"/> decides, and counts what it did. A
/// compressed batch is gathered from guest memory into one staging buffer (the codecs want contiguous input), compressed
/// into a second, and sent from there: it is a copy, so it never applies to MSG_ZEROCOPY sends (the sender does not offer
/// CompressedPages with <c>--zero-copy</c>). Batches the receiver did not agree to compress, batches without Full pages and
/// batches over <see cref="WireLimits.MaxCompressedBatchBytes"/> go raw. One per sender run; not thread-safe.
/// <para>
/// Compressed batches are pipelined: <see cref="WriteAsync"/> returns once the batch is compressed and its write has begun,
/// so the next batch compresses while this one waits for the link; each write first waits for the previous one (frames
/// stay in order, one output buffer per write in flight). <see cref="DrainAsync"/> waits for the last one: the encoder calls
/// it before a send returns, so a page counts as sent only once the transport took it.
/// </para>
/// </summary>
internal sealed class BatchCompressor : IDisposable
{
    private readonly CompressionChooser _chooser;
    private readonly CompressionMode _mode;
    private readonly PageCompression _codecs = new();
    private readonly string? _disabled;
    private byte[] _staging = [];
    private readonly byte[][] _outputs = [[], []]; // one per compressed write: the one in flight, the one being filled
    private int _slot;
    private PageDescriptor[] _descriptors = [];
    private Task _inFlight = Task.CompletedTask;
    private long _raw, _lz4, _zstd, _payload, _payloadWire, _lz4In, _lz4Out, _zstdIn, _zstdOut, _notSmaller, _probes;
    private long _compressTicks;
    private bool _negotiated = true;

    /// <param name="disabledBecause">Why compression cannot be used at all (e.g. zero-copy), or null.</param>
    public BatchCompressor(CompressionMode mode, double? linkBytesPerSecond, string? disabledBecause = null)
    {
        _mode = mode;
        _disabled = mode == CompressionMode.Off ? null : disabledBecause;
        _chooser = new CompressionChooser(_disabled is null ? mode : CompressionMode.Off, linkBytesPerSecond);
        if (Offered) _ = PageCompression.Warm(); // the codecs' JIT now, while the handshake runs, not in the first batches
    }

    public CompressionChooser Chooser => _chooser;

    /// <summary>
    /// How many times faster than raw a batch of <paramref name="rawBytes"/> is expected to move with the codec the next batch
    /// would use (raw / expected seconds, from the chooser's measured ratios, compress costs and link rate); 1 when
    /// compression is off, not negotiated or not yet measured. The sync engine scales the link rate by it, so the
    /// convergence policy and the readiness estimate count what compressed pages really take on the wire.
    /// </summary>
    public double ExpectedSpeedup(long rawBytes)
    {
        if (!Offered || !_negotiated || rawBytes <= 0) return 1;
        PageCodec codec = _mode switch
        {
            CompressionMode.Lz4 => PageCodec.Lz4,
            CompressionMode.Zstd => PageCodec.Zstd,
            _ => _chooser.Best(rawBytes),
        };
        if (codec == PageCodec.None) return 1;
        return _chooser.ExpectedSeconds(PageCodec.None, rawBytes) is { } raw && _chooser.ExpectedSeconds(codec, rawBytes) is { } with && with > 0
            ? Math.Max(1, raw / with)
            : 1;
    }

    /// <summary>Whether the sender offers <see cref="HelloOptions.CompressedPages"/>.</summary>
    public bool Offered => _mode != CompressionMode.Off && _disabled is null;

    /// <summary>Writes the batch: <paramref name="payloads"/> hold one page per Full descriptor, in order (views into guest memory).</summary>
    public async ValueTask WriteAsync(FrameWriter writer, ulong round, ReadOnlyMemory<PageDescriptor> descriptors,
        IReadOnlyList<ReadOnlyMemory<byte>> payloads, CancellationToken ct)
    {
        int pageSize = writer.Layout!.PageSize;
        long rawBytes = (long)payloads.Count * pageSize;
        if (payloads.Count == 0)
        {
            await writer.WritePageBatchAsync(round, descriptors, payloads, ct).ConfigureAwait(false);
            return;
        }
        _negotiated = writer.Options.HasFlag(HelloOptions.CompressedPages);
        // auto: raw until the codecs are JIT-warm (PageCompression.Warm, started with the sender), so that neither the
        // batches nor the chooser's estimates pay a cold codec
        bool ready = _mode != CompressionMode.Auto || PageCompression.Warm().IsCompleted;
        PageCodec codec = _negotiated && ready && rawBytes <= WireLimits.MaxCompressedBatchBytes ? _chooser.Choose(rawBytes) : PageCodec.None;
        int compressed = 0;
        if (codec != PageCodec.None)
        {
            if (_chooser.LastWasProbe) _probes++;
            long start = Stopwatch.GetTimestamp();
            compressed = Compress(codec, payloads, (int)rawBytes); // while the previous batch is still on its way
            long ticks = Stopwatch.GetTimestamp() - start;
            _compressTicks += ticks;
            _chooser.Compressed(codec, rawBytes, compressed, (double)ticks / Stopwatch.Frequency);
            if (compressed >= rawBytes)
            {
                _notSmaller++;
                codec = PageCodec.None;
            }
        }

        await DrainAsync().ConfigureAwait(false);
        _payload += rawBytes;
        if (codec == PageCodec.None)
        {
            long sendStart = Stopwatch.GetTimestamp();
            await writer.WritePageBatchAsync(round, descriptors, payloads, ct).ConfigureAwait(false);
            _raw++;
            _payloadWire += rawBytes;
            _chooser.Sent(FrameBytes(rawBytes, descriptors.Length), (double)(Stopwatch.GetTimestamp() - sendStart) / Stopwatch.Frequency);
            return;
        }
        long wire = compressed + PageBatch.CompressedFieldsLength;
        if (codec == PageCodec.Lz4) { _lz4++; _lz4In += rawBytes; _lz4Out += compressed; }
        else { _zstd++; _zstdIn += rawBytes; _zstdOut += compressed; }
        _payloadWire += wire;
        if (_descriptors.Length < descriptors.Length) _descriptors = new PageDescriptor[Math.Max(descriptors.Length, WireLimits.MaxPagesPerBatch)];
        descriptors.Span.CopyTo(_descriptors);
        _inFlight = WriteCompressedAsync(writer, round, _descriptors.AsMemory(0, descriptors.Length), codec,
            _outputs[_slot].AsMemory(0, compressed), FrameBytes(wire, descriptors.Length), ct);
        _slot ^= 1;
    }

    /// <summary>Waits until the last compressed batch's write has completed (rethrows its failure).</summary>
    public Task DrainAsync()
    {
        Task last = _inFlight;
        _inFlight = Task.CompletedTask;
        return last;
    }

    /// <summary>After a failed send: forgets the write in flight (its failure is observed, not rethrown later on another connection).</summary>
    public void Abandon()
    {
        Task last = _inFlight;
        _inFlight = Task.CompletedTask;
        if (!last.IsCompleted) _ = last.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        else _ = last.Exception;
    }

    private async Task WriteCompressedAsync(FrameWriter writer, ulong round, ReadOnlyMemory<PageDescriptor> descriptors, PageCodec codec,
        ReadOnlyMemory<byte> compressed, long frameBytes, CancellationToken ct)
    {
        long sendStart = Stopwatch.GetTimestamp();
        await writer.WriteCompressedPageBatchAsync(round, descriptors, codec, compressed, ct).ConfigureAwait(false);
        _chooser.Sent(frameBytes, (double)(Stopwatch.GetTimestamp() - sendStart) / Stopwatch.Frequency);
    }

    private static long FrameBytes(long wire, int descriptors) =>
        wire + PageBatch.FixedLength + FrameHeader.Size + (long)descriptors * PageDescriptor.WireLength;

    private int Compress(PageCodec codec, IReadOnlyList<ReadOnlyMemory<byte>> payloads, int rawBytes)
    {
        if (_staging.Length < rawBytes) _staging = new byte[rawBytes];
        int bound = PageCompression.MaxCompressedLength(codec, rawBytes);
        if (_outputs[_slot].Length < bound) _outputs[_slot] = new byte[bound];
        int at = 0;
        for (int i = 0; i < payloads.Count; i++)
        {
            ReadOnlySpan<byte> page = payloads[i].Span;
            page.CopyTo(_staging.AsSpan(at));
            at += page.Length;
        }
        return _codecs.Compress(codec, _staging.AsSpan(0, rawBytes), _outputs[_slot]);
    }

    public CompressionStats Stats() => new()
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

    public void Dispose() => _codecs.Dispose();
}
