using System.Diagnostics;
using System.Net.Sockets;
using KvmPresync.Wire;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Wire;

public sealed class MigrationSocketTests
{
    [Fact]
    public async Task Connected_and_accepted_sockets_have_nagle_disabled()
    {
        (Socket client, Socket server) = await LoopbackPairAsync();
        using (client)
        using (server)
        {
            Assert.True(client.NoDelay);
            Assert.True(server.NoDelay);
        }
    }

    [Fact]
    public void Configure_sets_nodelay_on_a_fresh_tcp_socket()
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        socket.NoDelay = false;
        MigrationSocket.Configure(socket);
        Assert.True(socket.NoDelay);
    }

    [Fact]
    public async Task Rate_limited_socket_gather_writer_is_no_faster_than_its_link()
    {
        const long rate = 40_000_000; // 5 MB/s: 1 MiB of pages ≥ 0.21 s
        MemoryLayout layout = MemoryLayout.SingleSlot(PageSize, 256 * PageSize);
        byte[] guest = new byte[256 * PageSize];
        Random.Shared.NextBytes(guest);
        (Socket client, Socket server) = await LoopbackPairAsync();
        using (client)
        using (server)
        {
            var watch = Stopwatch.StartNew(); // before the bucket: it starts empty at creation
            var writer = new FrameWriter(new SocketGatherWriter(client, new TokenBucket(rate, 64 * 1024)));
            writer.UseSession(layout, HelloOptions.All);
            var reader = new FrameReader(new NetworkStream(server));
            reader.UseSession(layout, HelloOptions.All);
            Task send = Task.Run(async () =>
            {
                for (int b = 0; b < 4; b++)
                {
                    var d = Enumerable.Range(b * 64, 64).Select(p => new PageDescriptor((ulong)p, PageKind.Full, 0)).ToArray();
                    await writer.WritePageBatchAsync(1, d, d.Select(x => (ReadOnlyMemory<byte>)guest.AsMemory((int)x.PageNumber * PageSize, PageSize)).ToArray(), Ct);
                }
            }, Ct);
            byte[] received = new byte[guest.Length];
            for (int b = 0; b < 4; b++)
            {
                PageBatch batch = await reader.ReadPageBatchAsync(await reader.ReadHeaderAsync(Ct), Ct);
                foreach (PageDescriptor d in batch.Descriptors.ToArray())
                    await reader.ReadPayloadAsync(received.AsMemory((int)d.PageNumber * PageSize, PageSize), Ct);
            }
            await send;
            double seconds = watch.Elapsed.TotalSeconds, bound = writer.BytesWritten * 8.0 / rate;
            Assert.Equal(guest, received);
            Assert.True(seconds >= bound, $"{writer.BytesWritten} bytes in {seconds:F4} s, the link allows no less than {bound:F4} s");
            Assert.True(seconds < bound + 1.5, $"took {seconds:F4} s for a {bound:F4} s transfer");
        }
    }
}
