using System.Diagnostics;
using System.Net.Sockets;
using KvmPresync.Wire;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Wire;

public sealed class RateLimitedStreamTests
{
    [Fact]
    public async Task Frames_over_a_rate_limited_loopback_link_take_at_least_the_physical_time()
    {
        const long rate = 100_000_000; // 100 Mbit/s → 2 MiB takes ≥ 0.1678 s
        MemoryLayout layout = MemoryLayout.SingleSlot(PageSize, 512 * PageSize);
        byte[] guest = new byte[512 * PageSize];
        Random.Shared.NextBytes(guest);
        (Socket client, Socket server) = await LoopbackPairAsync();
        var watch = Stopwatch.StartNew(); // before the buckets are created
        await using var senderStream = RateLimitedStream.Create(new NetworkStream(client, ownsSocket: true), rate);
        await using var receiverStream = new NetworkStream(server, ownsSocket: true);
        var writer = new FrameWriter(senderStream);
        writer.UseSession(layout, HelloOptions.All);
        var reader = new FrameReader(receiverStream);
        reader.UseSession(layout, HelloOptions.All);

        Task send = Task.Run(async () =>
        {
            for (int batch = 0; batch < 2; batch++)
            {
                var descriptors = Enumerable.Range(batch * 256, 256).Select(p => new PageDescriptor((ulong)p, PageKind.Full, 0)).ToArray();
                var payloads = descriptors.Select(d => (ReadOnlyMemory<byte>)guest.AsMemory((int)d.PageNumber * PageSize, PageSize)).ToArray();
                await writer.WritePageBatchAsync(1, descriptors, payloads, Ct);
            }
        }, Ct);
        byte[] received = new byte[guest.Length];
        for (int batch = 0; batch < 2; batch++)
        {
            PageBatch b = await reader.ReadPageBatchAsync(await reader.ReadHeaderAsync(Ct), Ct);
            foreach (PageDescriptor d in b.Descriptors.ToArray())
                reader.ReadPayload(received.AsSpan((int)d.PageNumber * PageSize, PageSize));
        }
        await send;
        double seconds = watch.Elapsed.TotalSeconds;

        Assert.Equal(guest, received);
        double bound = writer.BytesWritten * 8.0 / rate;
        Assert.True(seconds >= bound, $"{writer.BytesWritten} bytes took {seconds:F4} s, the link allows no less than {bound:F4} s");
        Assert.True(seconds < bound + 1.5, $"took {seconds:F4} s for a {bound:F4} s transfer");
    }

    [Fact]
    public void Synchronous_reads_are_paced_too_and_land_in_the_callers_buffer()
    {
        byte[] source = new byte[4000];
        Random.Shared.NextBytes(source);
        var watch = Stopwatch.StartNew(); // before the bucket: a new bucket starts empty, at its creation
        var readBucket = new TokenBucket(160_000, 1_000); // 20 000 bytes/s → 4000 bytes ≥ 0.2 s
        using var stream = new RateLimitedStream(new MemoryStream(source), readBucket, null);
        byte[] buffer = new byte[4000];
        int got = 0;
        while (got < buffer.Length) got += stream.Read(buffer.AsSpan(got, Math.Min(1000, buffer.Length - got)));
        double seconds = watch.Elapsed.TotalSeconds;
        Assert.Equal(source, buffer);
        Assert.True(seconds >= 0.2, $"took {seconds:F4} s");
        Assert.True(seconds < 2, $"took {seconds:F4} s");
    }
}
