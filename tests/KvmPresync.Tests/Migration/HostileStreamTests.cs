using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// A malformed or hostile stream, after a valid handshake, gets a clear error and a closed connection; the receiver
/// writes nothing but the valid page that came before it, and never resumes anything.
/// </summary>
public sealed class HostileStreamTests
{
    private const int PageSize = 4096;
    private const long MemoryBytes = 4L << 20; // 1024 pages

    private sealed class RecordingTarget(long bytes) : IMigrationTarget
    {
        public GuestMemoryMap Memory { get; } = GuestMemoryMap.Single(GuestMemory.Create(bytes), ownsMemory: true);
        public bool Resumed { get; private set; }
        public bool Disposed { get; private set; }
        public void Resume(ReadOnlySpan<byte> deviceState) => Resumed = true;
        public void Dispose() => Disposed = true; // the test inspects the memory afterwards, then frees it
    }

    private static byte[] Header(uint type, ulong bodyLength)
    {
        var h = new byte[FrameHeader.Size];
        BinaryPrimitives.WriteUInt32LittleEndian(h, type);
        BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(8), bodyLength);
        return h;
    }

    private static byte[] PageBatchFrame(ulong page, PageKind kind, int payloadBytes, ulong? declaredLength = null)
    {
        int body = 16 + PageDescriptor.WireLength + payloadBytes;
        var frame = new byte[FrameHeader.Size + body];
        Header((uint)FrameType.PageBatch, declaredLength ?? (ulong)body).CopyTo(frame, 0);
        Span<byte> b = frame.AsSpan(FrameHeader.Size);
        BinaryPrimitives.WriteUInt64LittleEndian(b, 1);      // round id
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], 1); // descriptor count
        BinaryPrimitives.WriteUInt64LittleEndian(b[16..], page);
        BinaryPrimitives.WriteUInt32LittleEndian(b[24..], (uint)kind);
        b[(16 + PageDescriptor.WireLength)..].Fill(0xAB);
        return frame;
    }

    public static TheoryData<string, byte[], string> Cases() => new()
    {
        { "truncated frame", PageBatchFrame(3, PageKind.Full, PageSize)[..200], "connection closed" },
        { "page number outside the layout", PageBatchFrame(1UL << 40, PageKind.Full, PageSize), "outside the announced layout" },
        { "wrong body length", PageBatchFrame(3, PageKind.Full, PageSize, declaredLength: 16 + PageDescriptor.WireLength + 100), "" },
        { "unknown frame type", Header(0x99, 0), "" },
        { "unknown page kind", PageBatchFrame(3, (PageKind)77, 0), "page kind" },
        { "oversized frame", Header((uint)FrameType.PageBatch, 1UL << 40), "" },
        { "final state before launch", Header((uint)FrameType.FinalState, 56), "not allowed" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task MalformedFrameAfterHandshakeIsRefusedAndWritesNothing(string name, byte[] bad, string messageContains)
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
        var reader = new FrameReader(stream);
        var writer = new FrameWriter(stream);
        await Handshake.RunSenderAsync(reader, writer, new SenderHandshakeOptions(MemoryLayout.SingleSlot(PageSize, MemoryBytes),
            PageHashAlgorithm.PageHasher, HelloOptions.ZeroPages), key, ct);
        // one valid page first, so the test can tell "applied" from "refused"
        byte[] good = PageBatchFrame(5, PageKind.Full, PageSize);
        await stream.WriteAsync(good, ct);
        await stream.WriteAsync(bad, ct);
        if (name == "truncated frame") hostile.Shutdown(SocketShutdown.Send);

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
                bool written = target.Memory.Page(p).IndexOfAnyExcept((byte)0) >= 0;
                // Payloads are received straight into guest memory: a frame cut mid-payload leaves its own
                // (validated, in-layout) page partly written — the guest is not resumed, so nothing runs on it.
                if (name == "truncated frame" && p == 3) continue;
                Assert.True(written == (p == 5), $"{name}: page {p} {(written ? "was written" : "is empty")}");
            }
        }
        // the connection is closed by the receiver: reading ends (an Abort frame may come first)
        var buffer = new byte[4096];
        int total = 0, n;
        using var readTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        readTimeout.CancelAfter(TimeSpan.FromSeconds(5));
        while ((n = await hostile.ReceiveAsync(buffer, SocketFlags.None, readTimeout.Token)) > 0) total += n;
        Assert.True(total < 4096);
    }

    [Fact]
    public async Task WrongProtocolVersionIsRefusedAtHello()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var key = MigrationHarness.Key();
        using Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        bool targetCreated = false;
        Task<ReceiveResult> receive = Task.Run(async () =>
        {
            using Socket conn = await MigrationSocket.AcceptAsync(listener, ct);
            return await PresyncReceiver.RunAsync(conn, key, layout => { targetCreated = true; return new RecordingTarget((long)layout.TotalBytes); }, null, ct);
        }, ct);
        using Socket sender = await MigrationSocket.ConnectAsync(listener.LocalEndPoint!, ct);
        var stream = new NetworkStream(sender, ownsSocket: false);
        var e = await Assert.ThrowsAnyAsync<ProtocolException>(() => Handshake.RunSenderAsync(new FrameReader(stream), new FrameWriter(stream),
            new SenderHandshakeOptions(MemoryLayout.SingleSlot(PageSize, MemoryBytes), PageHashAlgorithm.PageHasher, HelloOptions.ZeroPages)
            { Version = new ProtocolVersion(9, 0) }, key, ct));
        Assert.Contains("version", e.Message, StringComparison.OrdinalIgnoreCase);
        ReceiveResult result = await receive.WaitAsync(TimeSpan.FromSeconds(10), ct);
        Assert.False(result.Resumed);
        Assert.Contains("version", result.Failure, StringComparison.OrdinalIgnoreCase);
        Assert.False(targetCreated);
    }
}
