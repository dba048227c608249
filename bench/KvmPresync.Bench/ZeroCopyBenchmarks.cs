using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using KvmPresync.Memory;
using KvmPresync.Wire;

namespace KvmPresync.Bench;

/// <summary>
/// 64 MiB of guest pages from a native memfd mapping sent over loopback TCP as 64 PageBatches of 256 pages
/// through <see cref="FrameWriter"/>, drained by a receiver thread; one operation ends when the receiver has
/// every byte (and, with MSG_ZEROCOPY, when every send has completed). Throughput = 64 MiB / time.
/// Compares <see cref="SocketGatherWriter"/> (one send per native run), <see cref="ZeroCopySocketWriter"/>
/// copying (one sendmsg per frame, iovecs into the mapping) and with MSG_ZEROCOPY (loopback copies anyway, so
/// this measures its overhead; its gain needs a real NIC). Pages are contiguous (one 1 MiB run per frame) or
/// every other page (256 iovecs per frame).
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class ZeroCopyBenchmarks
{
    private const int PageSize = 4096;
    private const int PagesPerFrame = 256;
    private const int Frames = 64;                        // 64 × 1 MiB = 64 MiB of payload
    private const long GuestBytes = 2L * Frames * PagesPerFrame * PageSize;

    private GuestMemory _guest = null!;
    private Socket _client = null!, _server = null!;
    private Thread _receiver = null!;
    private long _received;
    private long _sent;
    private (PageDescriptor[] Descriptors, ReadOnlyMemory<byte>[] Payloads)[] _batches = [];
    private FrameWriter _gather = null!, _copy = null!, _zeroCopy = null!;
    private ZeroCopySocketWriter _zeroCopyTransport = null!;

    public enum PagePattern { Contiguous, EveryOtherPage }

    [Params(PagePattern.Contiguous, PagePattern.EveryOtherPage)]
    public PagePattern Pattern { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _guest = GuestMemory.Create(GuestBytes);
        var manager = new UnmanagedMemoryManager(_guest.Address, (int)GuestBytes);
        new Random(1).NextBytes(manager.GetSpan());
        int stride = Pattern == PagePattern.Contiguous ? 1 : 2;
        _batches = Enumerable.Range(0, Frames).Select(f =>
        {
            long[] pages = Enumerable.Range(0, PagesPerFrame).Select(i => (long)stride * (f * PagesPerFrame + i)).ToArray();
            return (pages.Select(p => new PageDescriptor((ulong)p, PageKind.Full, 0)).ToArray(),
                    pages.Select(p => (ReadOnlyMemory<byte>)manager.Memory.Slice((int)(p * PageSize), PageSize)).ToArray());
        }).ToArray();

        using Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        Task<Socket> accept = MigrationSocket.AcceptAsync(listener);
        _client = MigrationSocket.ConnectAsync(listener.LocalEndPoint!).GetAwaiter().GetResult();
        _server = accept.GetAwaiter().GetResult();
        _receiver = new Thread(Drain) { IsBackground = true, Name = "bench receiver" };
        _receiver.Start();

        MemoryLayout layout = MemoryLayout.SingleSlot(PageSize, (ulong)GuestBytes);
        _gather = Bind(new SocketGatherWriter(_client), layout);
        _copy = Bind(new ZeroCopySocketWriter(_client), layout);
        _zeroCopyTransport = new ZeroCopySocketWriter(_client, new ZeroCopyWriterOptions { ZeroCopy = true });
        _zeroCopy = Bind(_zeroCopyTransport, layout);
    }

    private static FrameWriter Bind(IGatherWriter transport, MemoryLayout layout)
    {
        var writer = new FrameWriter(transport);
        writer.UseSession(layout, HelloOptions.All);
        return writer;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client.Shutdown(SocketShutdown.Send);
        _receiver.Join();
        _client.Dispose();
        _server.Dispose();
        _guest.Dispose();
    }

    [Benchmark(Baseline = true, Description = "SocketGatherWriter")]
    public Task SocketGather() => SendAllAsync(_gather);

    [Benchmark(Description = "ZeroCopySocketWriter (copy)")]
    public Task ZeroCopyWriterCopy() => SendAllAsync(_copy);

    [Benchmark(Description = "ZeroCopySocketWriter (MSG_ZEROCOPY)")]
    public async Task ZeroCopyWriterMsgZeroCopy()
    {
        await SendAllAsync(_zeroCopy);
        await _zeroCopyTransport.WaitForCompletionsAsync(TimeSpan.FromSeconds(30));
    }

    private async Task SendAllAsync(FrameWriter writer)
    {
        long before = writer.BytesWritten;
        for (int f = 0; f < Frames; f++)
            await writer.WritePageBatchAsync((ulong)f, _batches[f].Descriptors, _batches[f].Payloads);
        _sent += writer.BytesWritten - before;
        var spin = new SpinWait();
        while (Volatile.Read(ref _received) < _sent) spin.SpinOnce();
    }

    private void Drain()
    {
        byte[] buffer = new byte[1 << 20];
        int n;
        while ((n = _server.Receive(buffer)) > 0) Interlocked.Add(ref _received, n);
    }
}
