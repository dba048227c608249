using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using K4os.Compression.LZ4;
using KvmPresync.Core;
using KvmPresync.Memory;
using KvmPresync.Migration;
using KvmPresync.Wire;
using ZstdSharp;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// A hostile compressed PageBatch (1.3, CompressedPages negotiated) after a valid handshake: the receiver answers with a clear
/// error and a closed connection, writes nothing but the valid page before it — a bomb or garbage never reaches guest memory,
/// not even the batch's own pages — and resumes nothing. A valid compressed batch before it is applied.
/// </summary>
public sealed class CompressedHostileStreamTests
{
    private const int PageSize = 4096;
    private const long MemoryBytes = 4L << 20; // 1024 pages

    private sealed class RecordingTarget(long bytes) : IMigrationTarget
    {
        public GuestMemoryMap Memory { get; } = GuestMemoryMap.Single(GuestMemory.Create(bytes), ownsMemory: true);
        public bool Resumed { get; private set; }
        public bool Disposed { get; private set; }
        public void Resume(ReadOnlySpan<byte> deviceState) => Resumed = true;
        public void Dispose() => Disposed = true;
    }

    private static byte[] Frame(uint codec, ulong[] pages, uint compressedLength, uint rawLength, byte[] payload, ulong? declared = null)
    {
        int body = 16 + 24 * pages.Length + 8 + payload.Length;
        var frame = new byte[FrameHeader.Size + body];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)FrameType.PageBatch);
        BinaryPrimitives.WriteUInt64LittleEndian(frame.AsSpan(8), declared ?? (ulong)body);
        Span<byte> b = frame.AsSpan(FrameHeader.Size);
        BinaryPrimitives.WriteUInt64LittleEndian(b, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], (uint)pages.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(b[12..], codec);
        for (int i = 0; i < pages.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b[(16 + 24 * i)..], pages[i]);
            BinaryPrimitives.WriteUInt32LittleEndian(b[(24 + 24 * i)..], (uint)PageKind.Full);
        }
        int at = 16 + 24 * pages.Length;
        BinaryPrimitives.WriteUInt32LittleEndian(b[at..], compressedLength);
        BinaryPrimitives.WriteUInt32LittleEndian(b[(at + 4)..], rawLength);
        payload.CopyTo(b[(at + 8)..]);
        return frame;
    }

    private static byte[] Lz4(byte[] raw)
    {
        byte[] o = new byte[LZ4Codec.MaximumOutputSize(raw.Length)];
        return o[..LZ4Codec.Encode(raw, o, LZ4Level.L00_FAST)];
    }

    private static byte[] Zstd(byte[] raw)
    {
        using var c = new Compressor(1);
        return c.Wrap(raw).ToArray();
    }

    private static byte[] Filled(int pages, byte value)
    {
        byte[] raw = new byte[pages * PageSize];
        Array.Fill(raw, value);
        return raw;
    }

    /// <summary>Two valid pages (6, 7) as one LZ4 batch: the receiver must apply them before the hostile frame.</summary>
    private static byte[] GoodCompressed()
    {
        byte[] c = Lz4(Filled(2, 0xCD));
        return Frame(1, [6, 7], (uint)c.Length, 2 * PageSize, c);
    }

    public static TheoryData<string, byte[], string> Cases()
    {
        byte[] garbage = new byte[1500];
        new Random(5).NextBytes(garbage);
        byte[] lz4Bomb = Lz4(new byte[1 << 20]);            // 1 MiB of zeros, ~4 KiB
        byte[] zstdBomb = Zstd(new byte[64 << 20]);        // 64 MiB of zeros, ~2 KiB
        byte[] overflow = Lz4(Filled(3, 0xEE));             // three pages' worth for two
        byte[] good = Lz4(Filled(2, 0xEE));
        return new()
        {
            { "lz4 garbage", Frame(1, [3, 4], (uint)garbage.Length, 2 * PageSize, garbage), "the LZ4 decoder refused it" },
            { "zstd garbage", Frame(2, [3, 4], (uint)garbage.Length, 2 * PageSize, garbage), "not a zstd frame" },
            { "lz4 bomb", Frame(1, [3, 4], (uint)lz4Bomb.Length, 2 * PageSize, lz4Bomb), "must decompress to exactly 8192 bytes" },
            { "zstd bomb", Frame(2, [3, 4], (uint)zstdBomb.Length, 2 * PageSize, zstdBomb), "declares 67108864 bytes" },
            { "lz4 overflow by one page", Frame(1, [3, 4], (uint)overflow.Length, 2 * PageSize, overflow), "the LZ4 decoder refused it" },
            { "unknown codec", Frame(9, [3, 4], (uint)good.Length, 2 * PageSize, good), "codec 9 is not" },
            { "raw length lies", Frame(1, [3, 4], (uint)good.Length, 3 * PageSize, good), "raw length is 12288 bytes" },
            { "compressed length not smaller", Frame(1, [3], PageSize, PageSize, new byte[PageSize]), "must be 1 … 4095" },
            { "compressed length over the body", Frame(1, [3, 4], (uint)good.Length + 100, 2 * PageSize, good), "imply" },
            { "page outside the layout", Frame(1, [3, 1UL << 40], (uint)good.Length, 2 * PageSize, good), "outside the announced layout" },
        };
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Hostile_compressed_batch_is_refused_and_writes_nothing(string name, byte[] bad, string messageContains)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var key = MigrationHarness.Key();
        using Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        RecordingTarget? target = null;
        Task<ReceiveResult> receive = Task.Run(async () =>
        {
            using Socket conn = await MigrationSocket.AcceptAsync(listener, ct);
            return await PresyncReceiver.RunAsync(conn, key, layout => target = new RecordingTarget((long)layout.TotalBytes), null, ct);
        }, ct);

        using Socket hostile = await MigrationSocket.ConnectAsync(listener.LocalEndPoint!, ct);
        var stream = new NetworkStream(hostile, ownsSocket: false);
        HandshakeResult session = await Handshake.RunSenderAsync(new FrameReader(stream), new FrameWriter(stream), new SenderHandshakeOptions(
            MemoryLayout.SingleSlot(PageSize, MemoryBytes), PageHashAlgorithm.PageHasher, HelloOptions.ZeroPages | HelloOptions.CompressedPages), key, ct);
        Assert.True(session.Options.HasFlag(HelloOptions.CompressedPages));
        await stream.WriteAsync(GoodCompressed(), ct);
        await stream.WriteAsync(bad, ct);

        ReceiveResult result = await receive.WaitAsync(TimeSpan.FromSeconds(20), ct);
        Assert.False(result.Resumed);
        Assert.NotNull(result.Failure);
        Assert.Contains(messageContains, result.Failure);
        Assert.Contains("not resumed", result.Failure);
        Assert.NotNull(target);
        Assert.False(target!.Resumed);
        Assert.True(target.Disposed);
        using (target.Memory)
        {
            for (long p = 0; p < target.Memory.PageCount; p++)
            {
                Span<byte> page = target.Memory.Page(p);
                if (p is 6 or 7) Assert.True(page.IndexOfAnyExcept((byte)0xCD) < 0, $"{name}: valid page {p} was not applied");
                else Assert.True(page.IndexOfAnyExcept((byte)0) < 0, $"{name}: page {p} was written");
            }
        }
        var buffer = new byte[4096];
        int total = 0, n;
        using var readTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        readTimeout.CancelAfter(TimeSpan.FromSeconds(5));
        while ((n = await hostile.ReceiveAsync(buffer, SocketFlags.None, readTimeout.Token)) > 0) total += n;
        Assert.True(total < 4096);
    }
}
