using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using KvmPresync.Wire;

namespace KvmPresync.Bench;

/// <summary>
/// One 1024-page PageBatch (4 MiB of payload, every other guest page so no runs merge) sent over loopback TCP
/// and received straight into a guest buffer. Compares the transports under <see cref="FrameWriter"/>:
/// a gather send on the socket (one sendmsg with an iovec per page) versus one stream write per page.
/// </summary>
public class WireLoopbackBenchmarks
{
    private const int PageSize = 4096;
    private const int Pages = 1024;

    private readonly MemoryLayout _layout = MemoryLayout.SingleSlot(PageSize, 2 * Pages * PageSize);
    private byte[] _guestOut = [];
    private byte[] _guestIn = [];
    private PageDescriptor[] _descriptors = [];
    private ReadOnlyMemory<byte>[] _payloads = [];
    private Socket _client = null!, _server = null!;
    private FrameWriter _writer = null!;
    private FrameReader _reader = null!;

    public enum Transport { SocketGather, NetworkStreamPerPage }

    [Params(Transport.SocketGather, Transport.NetworkStreamPerPage)]
    public Transport Kind { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _guestOut = new byte[2 * Pages * PageSize];
        _guestIn = new byte[2 * Pages * PageSize];
        new Random(1).NextBytes(_guestOut);
        _descriptors = Enumerable.Range(0, Pages).Select(i => new PageDescriptor((ulong)(2 * i), PageKind.Full, 0)).ToArray();
        _payloads = _descriptors.Select(d => (ReadOnlyMemory<byte>)_guestOut.AsMemory((int)d.PageNumber * PageSize, PageSize)).ToArray();

        using Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        Task<Socket> accept = MigrationSocket.AcceptAsync(listener);
        _client = MigrationSocket.ConnectAsync(listener.LocalEndPoint!).GetAwaiter().GetResult();
        _server = accept.GetAwaiter().GetResult();

        _writer = Kind == Transport.SocketGather ? new FrameWriter(_client) : new FrameWriter(new NetworkStream(_client));
        _writer.UseSession(_layout, HelloOptions.All);
        _reader = new FrameReader(new NetworkStream(_server));
        _reader.UseSession(_layout, HelloOptions.All);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client.Dispose();
        _server.Dispose();
    }

    [Benchmark(Description = "send + receive 1024 scattered pages")]
    public async Task SendAndReceive()
    {
        Task send = _writer.WritePageBatchAsync(1, _descriptors, _payloads).AsTask();
        PageBatch batch = await _reader.ReadPageBatchAsync(await _reader.ReadHeaderAsync());
        for (int i = 0; i < batch.FullPages; i++)
            await _reader.ReadPayloadAsync(_guestIn.AsMemory((int)_descriptors[i].PageNumber * PageSize, PageSize));
        await send;
    }
}
