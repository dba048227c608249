using System.Diagnostics;
using System.Net.Sockets;
using KvmPresync.Wire;
using static KvmPresync.Tests.ZeroCopy.ZeroCopyTestSupport;

namespace KvmPresync.Tests.ZeroCopy;

/// <summary>
/// ZeroCopySocketWriter over loopback TCP: frames whose payloads point into a memfd guest mapping arrive byte
/// for byte through FrameReader, however the kernel splits the sends.
/// </summary>
public sealed class ZeroCopySocketWriterTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Frames_with_payloads_inside_guest_memory_arrive_byte_for_byte(bool zeroCopy)
    {
        using NativeGuest source = NativeGuest.Create(16 << 20);
        using NativeGuest destination = NativeGuest.Create(16 << 20, seed: null);
        (Socket client, Socket server) = await PairAsync();
        using (client)
        using (server)
        {
            using var transport = new ZeroCopySocketWriter(client, new ZeroCopyWriterOptions { ZeroCopy = zeroCopy });
            FrameWriter writer = Writer(transport, source.Layout);
            FrameReader reader = Reader(server, source.Layout);

            long[][] frames =
            [
                Enumerable.Range(0, 256).Select(i => 3L * i + 1).ToArray(),   // scattered: one iovec per page
                Enumerable.Range(1000, 512).Select(i => (long)i).ToArray(),   // contiguous: one 2 MiB run
                [4000, 4001, 4002, 17, 4095, 2],                              // runs and singles, unordered
            ];
            foreach (long[] pages in frames)
            {
                (PageDescriptor[] descriptors, ReadOnlyMemory<byte>[] payloads) = source.Batch(pages);
                Task send = writer.WritePageBatchAsync(7, descriptors, payloads, Ct).AsTask();
                List<ulong> received = await ReceiveBatchAsync(reader, destination);
                await send;
                Assert.Equal(pages.Select(p => (ulong)p), received);
                AssertSamePages(source, destination, received);
            }

            ZeroCopyStats stats = transport.Stats;
            long payload = frames.Sum(f => (long)f.Length) * PageSize;
            Assert.Equal(frames.Sum(f => BatchWireBytes(f.Length)), stats.BytesSent);
            Assert.Equal(payload, stats.PayloadBytes); // every payload byte left straight from the mapping
            Assert.Equal(writer.BytesWritten, stats.BytesSent);
            if (!zeroCopy) Assert.Equal(0, stats.Issued);
        }
    }

    [Fact]
    public async Task A_small_frame_is_one_sendmsg_with_an_iovec_per_page()
    {
        using NativeGuest source = NativeGuest.Create(1 << 20);
        using NativeGuest destination = NativeGuest.Create(1 << 20, seed: null);
        (Socket client, Socket server) = await PairAsync(clientSendBuffer: 1 << 20);
        using (client)
        using (server)
        {
            using var transport = new ZeroCopySocketWriter(client);
            FrameWriter writer = Writer(transport, source.Layout);
            (PageDescriptor[] descriptors, ReadOnlyMemory<byte>[] payloads) = source.Batch([1, 3, 5, 7, 9]);
            await writer.WritePageBatchAsync(1, descriptors, payloads, Ct);

            Assert.Equal(1, transport.Stats.SendCalls);
            Assert.Equal(0, transport.Stats.Waits);
            List<ulong> received = await ReceiveBatchAsync(Reader(server, source.Layout), destination);
            AssertSamePages(source, destination, received);
        }
    }

    [Fact]
    public async Task A_frame_of_more_than_1024_runs_is_split_into_several_sendmsg_calls_without_losing_bytes()
    {
        using NativeGuest source = NativeGuest.Create(16 << 20);
        using NativeGuest destination = NativeGuest.Create(16 << 20, seed: null);
        (Socket client, Socket server) = await PairAsync();
        using (client)
        using (server)
        {
            using var transport = new ZeroCopySocketWriter(client);
            FrameWriter writer = Writer(transport, source.Layout);
            long[] pages = Enumerable.Range(0, 1500).Select(i => 2L * i + 1).ToArray(); // 1501 iovecs with the head
            (PageDescriptor[] descriptors, ReadOnlyMemory<byte>[] payloads) = source.Batch(pages);
            Task send = writer.WritePageBatchAsync(1, descriptors, payloads, Ct).AsTask();
            List<ulong> received = await ReceiveBatchAsync(Reader(server, source.Layout), destination);
            await send;

            AssertSamePages(source, destination, received);
            ZeroCopyStats stats = transport.Stats;
            Assert.True(stats.SendCalls - stats.Waits >= 2, $"{stats.SendCalls - stats.Waits} sendmsg calls for 1501 iovecs (at most 1024 per call)");
            Assert.Equal(BatchWireBytes(pages.Length), stats.BytesSent);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Partial_sends_on_a_small_send_buffer_resume_where_they_stopped(bool zeroCopy)
    {
        using NativeGuest source = NativeGuest.Create(16 << 20);
        using NativeGuest destination = NativeGuest.Create(16 << 20, seed: null);
        (Socket client, Socket server) = await PairAsync(clientSendBuffer: 4096, serverReceiveBuffer: 4096);
        using (client)
        using (server)
        {
            using var transport = new ZeroCopySocketWriter(client, new ZeroCopyWriterOptions { ZeroCopy = zeroCopy });
            FrameWriter writer = Writer(transport, source.Layout);
            long[] pages = Enumerable.Range(0, 1024).Select(i => 3L * i + 2).ToArray(); // 4 MiB, scattered
            (PageDescriptor[] descriptors, ReadOnlyMemory<byte>[] payloads) = source.Batch(pages);
            Task send = writer.WritePageBatchAsync(1, descriptors, payloads, Ct).AsTask();
            List<ulong> received = await ReceiveBatchAsync(Reader(server, source.Layout), destination);
            await send;
            await transport.WaitForCompletionsAsync(TimeSpan.FromSeconds(10), Ct);

            AssertSamePages(source, destination, received);
            ZeroCopyStats stats = transport.Stats;
            Assert.True(stats.Waits > 0, "a 4 KiB send buffer cannot take 4 MiB at once: the writer must have waited for room");
            Assert.Equal(BatchWireBytes(pages.Length), stats.BytesSent);
            Assert.Equal(stats.Issued, stats.Completed);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_peer_that_closes_mid_send_fails_the_write_with_an_IOException_naming_the_operation(bool zeroCopy)
    {
        using NativeGuest source = NativeGuest.Create(16 << 20);
        (Socket client, Socket server) = await PairAsync(serverReceiveBuffer: 64 << 10);
        using (client)
        {
            using var transport = new ZeroCopySocketWriter(client, new ZeroCopyWriterOptions { ZeroCopy = zeroCopy });
            long[] pages = Enumerable.Range(0, 4096).Select(i => (long)i).ToArray();
            (_, ReadOnlyMemory<byte>[] payloads) = source.Batch(pages);

            // The peer takes a little, then closes with unread data: the kernel answers further data with a reset.
            Task closer = Task.Run(() =>
            {
                byte[] buffer = new byte[16 << 10];
                int got = 0;
                while (got < 64 << 10) got += server.Receive(buffer);
                server.Close();
            }, Ct);
            IOException e = await Assert.ThrowsAsync<IOException>(async () =>
            {
                for (int i = 0; i < 64; i++) await transport.WriteAsync(payloads, Ct); // 64 × 16 MiB: far more than the buffers hold
            });
            await closer;
            Assert.Matches(@"^(sendmsg|send) .*failed", e.Message);
            Assert.Contains("receiver closed the connection", e.Message);
        }
    }

    [Fact]
    public async Task In_zero_copy_mode_the_managed_head_is_copied_and_only_guest_pages_go_with_MSG_ZEROCOPY()
    {
        using NativeGuest source = NativeGuest.Create(1 << 20);
        using NativeGuest destination = NativeGuest.Create(1 << 20, seed: null);
        (Socket client, Socket server) = await PairAsync(clientSendBuffer: 1 << 20);
        using (client)
        using (server)
        {
            using var transport = new ZeroCopySocketWriter(client, new ZeroCopyWriterOptions { ZeroCopy = true });
            FrameWriter writer = Writer(transport, source.Layout);
            FrameReader reader = Reader(server, source.Layout);
            long[] pages = [10, 12, 14, 16, 18, 20, 22, 24]; // 32 KiB: above the 16 KiB threshold
            (PageDescriptor[] descriptors, ReadOnlyMemory<byte>[] payloads) = source.Batch(pages);
            await writer.WritePageBatchAsync(1, descriptors, payloads, Ct);

            ZeroCopyStats stats = transport.Stats;
            Assert.Equal(2, stats.SendCalls);                    // head (copied, MSG_MORE), then the pages
            Assert.Equal(1, stats.Issued);
            Assert.Equal(pages.Length * PageSize, stats.ZeroCopyBytes);
            AssertSamePages(source, destination, await ReceiveBatchAsync(reader, destination));

            // Below the threshold copying is cheaper: one plain sendmsg.
            (descriptors, payloads) = source.Batch([30, 40]);
            await writer.WritePageBatchAsync(2, descriptors, payloads, Ct);
            Assert.Equal(3, transport.Stats.SendCalls);
            Assert.Equal(1, transport.Stats.Issued);
            AssertSamePages(source, destination, await ReceiveBatchAsync(reader, destination));

            // Managed pages may move or be reused after the write returns: never zero-copy.
            byte[][] managed = Enumerable.Range(0, 8).Select(_ => new byte[PageSize]).ToArray();
            await transport.WriteAsync(managed.Select(m => (ReadOnlyMemory<byte>)m).ToArray(), Ct);
            Assert.Equal(1, transport.Stats.Issued);
            Assert.Equal(4, transport.Stats.SendCalls);
        }
    }

    [Fact]
    public async Task A_token_bucket_paces_the_frames()
    {
        using NativeGuest source = NativeGuest.Create(4 << 20);
        (Socket client, Socket server) = await PairAsync();
        using (client)
        using (server)
        {
            const long bitsPerSecond = 80_000_000; // 10 MB/s
            var bucket = new TokenBucket(bitsPerSecond, 64 << 10);
            using var transport = new ZeroCopySocketWriter(client, new ZeroCopyWriterOptions { RateLimit = bucket });
            Task<long> drain = Task.Run(() => Drain(server), Ct);
            (_, ReadOnlyMemory<byte>[] payloads) = source.Batch(Enumerable.Range(0, 256).Select(i => (long)i));
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < 3; i++) await transport.WriteAsync(payloads, Ct); // 3 MiB
            TimeSpan elapsed = clock.Elapsed;
            client.Shutdown(SocketShutdown.Send);

            Assert.Equal(3L << 20, await drain);
            double floor = (3L << 20) * 8.0 / bitsPerSecond; // a new bucket starts empty
            Assert.True(elapsed.TotalSeconds >= floor * 0.95, $"3 MiB at 10 MB/s took {elapsed.TotalSeconds:0.000} s, at least {floor:0.000} s expected");
        }
    }
}
