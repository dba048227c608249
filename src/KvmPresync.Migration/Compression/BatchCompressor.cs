using System.Diagnostics;
using KvmPresync.Wire;

namespace KvmPresync.Migration.Compression;

/// <summary>
/// Writes one PageBatch raw or compressed, as the <see cref="CompressionChooser"/> decides, and counts what it did. A
/// compressed batch is gathered from guest memory into one staging buffer (the codecs want contiguous input), compressed
/// into a second, and sent from there: it is a copy, so it never applies to MSG_ZEROCOPY sends (the sender does not offer
/// CompressedPages with <c>--zero-copy</c>). Batches the receiver did not agree to compress, batches without Full pages and
/// batches over <see cref="WireLimits.MaxCompressedBatchBytes"/> go raw. One per sender run; not thread-safe.
/// </summary>
internal sealed class BatchCompressor : IDisposable
{
    private readonly CompressionChooser _chooser;
    private readonly CompressionMode _mode;
    private readonly PageCompression _codecs = new();
    private readonly string? _disabled;
    private byte[] _staging = [];
    private byte[] _output = [];
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
            compressed = Compress(codec, payloads, (int)rawBytes);
            long ticks = Stopwatch.GetTimestamp() - start;
            _compressTicks += ticks;
            _chooser.Compressed(codec, rawBytes, compressed, (double)ticks / Stopwatch.Frequency);
            if (compressed >= rawBytes)
            {
                _notSmaller++;
                codec = PageCodec.None;
            }
        }

        long sendStart = Stopwatch.GetTimestamp();
        long wire;
        if (codec == PageCodec.None)
        {
            await writer.WritePageBatchAsync(round, descriptors, payloads, ct).ConfigureAwait(false);
            wire = rawBytes;
            _raw++;
        }
        else
        {
            await writer.WriteCompressedPageBatchAsync(round, descriptors, codec, _output.AsMemory(0, compressed), ct).ConfigureAwait(false);
            wire = compressed + PageBatch.CompressedFieldsLength;
            if (codec == PageCodec.Lz4) { _lz4++; _lz4In += rawBytes; _lz4Out += compressed; }
            else { _zstd++; _zstdIn += rawBytes; _zstdOut += compressed; }
        }
        long frame = wire + PageBatch.FixedLength + FrameHeader.Size + (long)descriptors.Length * PageDescriptor.WireLength;
        _chooser.Sent(frame, (double)(Stopwatch.GetTimestamp() - sendStart) / Stopwatch.Frequency);
        _payload += rawBytes;
        _payloadWire += wire;
    }

    private int Compress(PageCodec codec, IReadOnlyList<ReadOnlyMemory<byte>> payloads, int rawBytes)
    {
        if (_staging.Length < rawBytes) _staging = new byte[rawBytes];
        int bound = PageCompression.MaxCompressedLength(codec, rawBytes);
        if (_output.Length < bound) _output = new byte[bound];
        int at = 0;
        for (int i = 0; i < payloads.Count; i++)
        {
            ReadOnlySpan<byte> page = payloads[i].Span;
            page.CopyTo(_staging.AsSpan(at));
            at += page.Length;
        }
        return _codecs.Compress(codec, _staging.AsSpan(0, rawBytes), _output);
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
