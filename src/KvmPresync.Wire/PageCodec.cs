using K4os.Compression.LZ4;
using ZstdSharp;

namespace KvmPresync.Wire;

/// <summary>
/// How a PageBatch's Full payloads travel (protocol 1.3, only with <see cref="HelloOptions.CompressedPages"/>): the u32 at
/// body offset 12, which was reserved (0) before 1.3. <c>0 = None</c> is therefore not "Invalid" here: it is the raw
/// batch, byte for byte what a 1.2 peer sends.
/// </summary>
public enum PageCodec : uint
{
    /// <summary>Raw: one page-size payload per Full descriptor follows the descriptors.</summary>
    None = 0,
    /// <summary>The Full payloads, concatenated in descriptor order, as one LZ4 block (K4os.Compression.LZ4, raw block format).</summary>
    Lz4 = 1,
    /// <summary>The Full payloads, concatenated in descriptor order, as one zstd frame (ZstdSharp).</summary>
    Zstd = 2,
}

/// <summary>
/// The codecs' compress and decompress steps over one batch's concatenated payload. Decompression writes only inside the
/// destination span it is given and reports anything but an exact fill as a <see cref="ProtocolException"/>.
/// Not thread-safe (one zstd context each way); one instance per connection direction.
/// </summary>
public sealed class PageCompression : IDisposable
{
    /// <summary>The zstd level the sender uses: 1, the fastest positive level (ratio close to level 3 on memory pages).</summary>
    public const int ZstdLevel = 1;

    private Compressor? _zstdCompressor;
    private Decompressor? _zstdDecompressor;
    private static Task? s_warm;

    /// <summary>
    /// Runs both codecs, both ways, on a small buffer 40 times each on a background thread, once per process, so that a
    /// migration's first batches do not pay the codecs' JIT: measured, a cold first compress call took ~100 ms and the
    /// following ones ran ~10× slower than warm until the runtime had recompiled them (tiered compilation promotes a method
    /// after 30 calls). The sender starts it when it offers compression, the reader when a session negotiates it.
    /// </summary>
    public static Task Warm() => LazyInitializer.EnsureInitialized(ref s_warm, () => Task.Run(static () =>
    {
        byte[] raw = new byte[16 * 1024];
        var random = new Random(1);
        for (int i = 0; i < raw.Length; i++) raw[i] = i % 512 < 384 ? (byte)"warm up the page codecs "[i % 24] : (byte)random.Next(256);
        using var codecs = new PageCompression();
        byte[] restored = new byte[raw.Length];
        foreach (PageCodec codec in new[] { PageCodec.Lz4, PageCodec.Zstd })
        {
            byte[] compressed = new byte[MaxCompressedLength(codec, raw.Length)];
            for (int i = 0; i < 40; i++)
            {
                int n = codecs.Compress(codec, raw, compressed);
                codecs.Decompress(codec, compressed.AsSpan(0, n), restored, "warm-up");
            }
        }
    }));

    /// <summary>Room a compress call needs for <paramref name="rawLength"/> input bytes in the worst case.</summary>
    public static int MaxCompressedLength(PageCodec codec, int rawLength) => codec switch
    {
        PageCodec.Lz4 => LZ4Codec.MaximumOutputSize(rawLength),
        PageCodec.Zstd => Compressor.GetCompressBound(rawLength),
        _ => throw new ArgumentOutOfRangeException(nameof(codec), codec, "not a compression codec"),
    };

    /// <summary>
    /// Compresses <paramref name="raw"/> into <paramref name="destination"/> (at least <see cref="MaxCompressedLength"/>);
    /// returns the compressed length.
    /// </summary>
    public int Compress(PageCodec codec, ReadOnlySpan<byte> raw, Span<byte> destination)
    {
        switch (codec)
        {
            case PageCodec.Lz4:
                int n = LZ4Codec.Encode(raw, destination, LZ4Level.L00_FAST);
                if (n <= 0) throw new InvalidOperationException($"LZ4 could not compress {raw.Length} bytes into {destination.Length}");
                return n;
            case PageCodec.Zstd:
                _zstdCompressor ??= new Compressor(ZstdLevel);
                return _zstdCompressor.Wrap(raw, destination);
            default:
                throw new ArgumentOutOfRangeException(nameof(codec), codec, "not a compression codec");
        }
    }

    /// <summary>
    /// Decompresses a peer's <paramref name="compressed"/> payload into exactly <paramref name="destination"/>. Writes
    /// nothing outside it: an output that would be longer (a decompression bomb), shorter, or a stream the decoder refuses
    /// is a <see cref="ProtocolException"/> (<see cref="ProtocolError.InvalidField"/>, field "PageBatch.payload").
    /// </summary>
    public void Decompress(PageCodec codec, ReadOnlySpan<byte> compressed, Span<byte> destination, string what)
    {
        int got;
        string? detail = null;
        switch (codec)
        {
            case PageCodec.Lz4:
                // the "safe" decoder: every literal and match is bounds-checked against both buffers; -1 on any violation
                got = LZ4Codec.Decode(compressed, destination);
                if (got < 0) detail = "the LZ4 decoder refused it (malformed block, or its output exceeds the batch's pages)";
                break;
            case PageCodec.Zstd:
                ulong declared;
                try
                {
                    declared = Decompressor.GetDecompressedSize(compressed);
                }
                catch (ZstdException e)
                {
                    throw Failed(codec, compressed.Length, destination.Length, what, $"not a zstd frame ({e.Message})", e);
                }
                if (declared != 0 && declared != (ulong)destination.Length)
                    throw Failed(codec, compressed.Length, destination.Length, what, $"its frame header declares {declared} bytes", null);
                _zstdDecompressor ??= new Decompressor();
                try
                {
                    got = _zstdDecompressor.Unwrap(compressed, destination);
                }
                catch (ZstdException e)
                {
                    throw Failed(codec, compressed.Length, destination.Length, what, $"the zstd decoder refused it ({e.Message})", e);
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(codec), codec, "not a compression codec");
        }
        if (detail is null && got != destination.Length)
            detail = $"it decompressed to {got} bytes";
        if (detail is not null)
            throw Failed(codec, compressed.Length, destination.Length, what, detail, null);
    }

    private static ProtocolException Failed(PageCodec codec, int compressed, int expected, string what, string detail, Exception? inner) =>
        new(ProtocolError.InvalidField, "PageBatch.payload", compressed,
            $"{what}: the {codec} payload ({compressed} bytes) must decompress to exactly {expected} bytes (its Full pages); {detail}", inner);

    public void Dispose()
    {
        _zstdCompressor?.Dispose();
        _zstdDecompressor?.Dispose();
    }
}
