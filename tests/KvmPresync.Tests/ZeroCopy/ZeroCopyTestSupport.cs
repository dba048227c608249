using System.Net;
using System.Net.Sockets;
using KvmPresync.Memory;
using KvmPresync.Wire;

namespace KvmPresync.Tests.ZeroCopy;

/// <summary>
/// Guest memory (a real memfd mapping, no /dev/kvm needed) exposed as <see cref="Memory{T}"/>, with helpers to
/// build PageBatches whose payloads point into it.
/// </summary>
internal sealed class NativeGuest : IDisposable
{
    public const int PageSize = 4096;

    private NativeGuest(GuestMemory memory)
    {
        Memory = memory;
        Manager = new UnmanagedMemoryManager(memory.Address, checked((int)memory.Size));
        Layout = MemoryLayout.SingleSlot(PageSize, (ulong)memory.Size);
    }

    public GuestMemory Memory { get; }

    public UnmanagedMemoryManager Manager { get; }

    public MemoryLayout Layout { get; }

    public int Pages => (int)(Memory.Size / PageSize);

    /// <summary>Guest memory of <paramref name="bytes"/> filled with pseudo-random bytes from <paramref name="seed"/>.</summary>
    public static NativeGuest Create(int bytes, int? seed = 1)
    {
        var guest = new NativeGuest(GuestMemory.Create(bytes));
        if (seed is int s) new Random(s).NextBytes(guest.Manager.GetSpan());
        return guest;
    }

    public ReadOnlyMemory<byte> Page(long page) => Manager.Memory.Slice((int)(page * PageSize), PageSize);

    public Span<byte> PageSpan(long page) => Manager.GetSpan().Slice((int)(page * PageSize), PageSize);

    /// <summary>Full descriptors and payloads (views into this guest's mapping) for <paramref name="pages"/>.</summary>
    public (PageDescriptor[] Descriptors, ReadOnlyMemory<byte>[] Payloads) Batch(IEnumerable<long> pages)
    {
        long[] list = pages.ToArray();
        return (list.Select(p => new PageDescriptor((ulong)p, PageKind.Full, (ulong)p)).ToArray(), list.Select(Page).ToArray());
    }

    public void Dispose() => Memory.Dispose();
}

internal static class ZeroCopyTestSupport
{
    public const int PageSize = NativeGuest.PageSize;

    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Bytes a PageBatch of <paramref name="fullPages"/> Full descriptors occupies on the wire.</summary>
    public static long BatchWireBytes(int fullPages) =>
        FrameHeader.Size + PageBatch.FixedLength + (long)fullPages * (PageDescriptor.WireLength + PageSize);

    /// <summary>
    /// A connected loopback TCP pair (127.0.0.1). Buffer sizes are set before the connection is made, so the
    /// receive window is negotiated with them (0 = kernel default).
    /// </summary>
    public static async Task<(Socket Client, Socket Server)> PairAsync(int clientSendBuffer = 0, int serverReceiveBuffer = 0)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        if (serverReceiveBuffer > 0) listener.ReceiveBufferSize = serverReceiveBuffer;
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        if (clientSendBuffer > 0) client.SendBufferSize = clientSendBuffer;
        MigrationSocket.Configure(client);
        Task<Socket> accept = listener.AcceptAsync(Ct).AsTask();
        await client.ConnectAsync(listener.LocalEndPoint!, Ct);
        Socket server = await accept;
        MigrationSocket.Configure(server);
        return (client, server);
    }

    /// <summary>A reader on <paramref name="server"/> bound to <paramref name="layout"/>.</summary>
    public static FrameReader Reader(Socket server, MemoryLayout layout)
    {
        var reader = new FrameReader(new NetworkStream(server));
        reader.UseSession(layout, HelloOptions.All);
        return reader;
    }

    /// <summary>A FrameWriter over <paramref name="transport"/> bound to <paramref name="layout"/>.</summary>
    public static FrameWriter Writer(IGatherWriter transport, MemoryLayout layout)
    {
        var writer = new FrameWriter(transport);
        writer.UseSession(layout, HelloOptions.All);
        return writer;
    }

    /// <summary>Reads one PageBatch, writing each Full payload to its page in <paramref name="destination"/>; returns the batch's Full page numbers.</summary>
    public static async Task<List<ulong>> ReceiveBatchAsync(FrameReader reader, NativeGuest destination)
    {
        FrameHeader header = await reader.ReadHeaderAsync(Ct);
        Assert.Equal(FrameType.PageBatch, header.Type);
        PageBatch batch = await reader.ReadPageBatchAsync(header, Ct);
        ulong[] full = batch.Descriptors.ToArray().Where(d => d.Kind == PageKind.Full).Select(d => d.PageNumber).ToArray();
        foreach (ulong page in full)
            await reader.ReadPayloadAsync(destination.Manager.Memory.Slice((int)page * PageSize, PageSize), Ct);
        return [.. full];
    }

    /// <summary>Reads and discards everything until the peer shuts down its sending side; returns the byte count.</summary>
    public static long Drain(Socket socket)
    {
        byte[] buffer = new byte[1 << 20];
        long total = 0;
        int n;
        while ((n = socket.Receive(buffer)) > 0) total += n;
        return total;
    }

    public static void AssertSamePages(NativeGuest expected, NativeGuest actual, IEnumerable<ulong> pages)
    {
        foreach (ulong p in pages)
            Assert.True(expected.PageSpan((long)p).SequenceEqual(actual.PageSpan((long)p)), $"page {p} differs after the round trip");
    }
}
