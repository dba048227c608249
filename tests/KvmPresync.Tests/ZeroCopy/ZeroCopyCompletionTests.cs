using System.Net.Sockets;
using KvmPresync.Wire;
using static KvmPresync.Tests.ZeroCopy.ZeroCopyTestSupport;

namespace KvmPresync.Tests.ZeroCopy;

/// <summary>
/// MSG_ZEROCOPY completions: every issued send is completed once the peer has the data, loopback reports the
/// kernel's copies, and the final-phase wait does not return while the kernel may still read guest pages.
/// </summary>
public sealed class ZeroCopyCompletionTests
{
    [Fact]
    public async Task Loopback_zero_copy_sends_all_complete_and_are_reported_as_copied()
    {
        using NativeGuest source = NativeGuest.Create(16 << 20);
        using NativeGuest destination = NativeGuest.Create(16 << 20, seed: null);
        (Socket client, Socket server) = await PairAsync();
        using (client)
        using (server)
        {
            using var transport = new ZeroCopySocketWriter(client, new ZeroCopyWriterOptions { ZeroCopy = true });
            FrameWriter writer = Writer(transport, source.Layout);
            FrameReader reader = Reader(server, source.Layout);
            const int frames = 16, pagesPerFrame = 256;
            for (int f = 0; f < frames; f++)
            {
                (PageDescriptor[] descriptors, ReadOnlyMemory<byte>[] payloads) =
                    source.Batch(Enumerable.Range(f * pagesPerFrame, pagesPerFrame).Select(p => (long)p));
                Task send = writer.WritePageBatchAsync((ulong)f, descriptors, payloads, Ct).AsTask();
                AssertSamePages(source, destination, await ReceiveBatchAsync(reader, destination));
                await send;
            }
            await transport.WaitForCompletionsAsync(TimeSpan.FromSeconds(10), Ct);

            ZeroCopyStats stats = transport.Stats;
            Assert.True(stats.Issued >= frames, $"{stats.Issued} zero-copy sends for {frames} frames of 1 MiB");
            Assert.Equal(stats.Issued, stats.Completed);
            Assert.Equal(0, stats.Outstanding);
            // Loopback hands the pages to a local socket, which must copy them: the kernel says so.
            Assert.True(stats.Copied > 0, "loopback completions must be flagged SO_EE_CODE_ZEROCOPY_COPIED");
            Assert.Equal(stats.Completed, stats.Copied);
            // Every payload byte left from the mapping; all of it with MSG_ZEROCOPY except what a full socket buffer
            // made the writer send while waiting for room (≤ 4 KiB per wait) or what ENOBUFS sent with a copy.
            Assert.Equal((long)frames * pagesPerFrame * PageSize, stats.PayloadBytes);
            if (stats.Fallbacks == 0)
                Assert.InRange(stats.PayloadBytes - stats.ZeroCopyBytes, 0, stats.Waits * PageSize);
        }
    }

    [Fact]
    public async Task Completion_wait_times_out_while_the_peer_holds_back_the_data_and_succeeds_once_it_reads()
    {
        using NativeGuest source = NativeGuest.Create(1 << 20);
        // A receiver with a tiny window: most of the frame stays queued in the sender's kernel, pages pinned.
        (Socket client, Socket server) = await PairAsync(serverReceiveBuffer: 4096);
        using (client)
        using (server)
        {
            client.SendBufferSize = 1 << 20;
            using var transport = new ZeroCopySocketWriter(client, new ZeroCopyWriterOptions { ZeroCopy = true });
            (_, ReadOnlyMemory<byte>[] payloads) = source.Batch(Enumerable.Range(0, 32).Select(p => 2L * p)); // 128 KiB, scattered
            await transport.WriteAsync(payloads, Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct);
            Assert.True(transport.Stats.Issued >= 1);

            TimeoutException timeout = await Assert.ThrowsAsync<TimeoutException>(
                async () => await transport.WaitForCompletionsAsync(TimeSpan.FromMilliseconds(200), Ct));
            Assert.Contains("still held by the kernel", timeout.Message);
            Assert.True(transport.Stats.Outstanding > 0);

            client.Shutdown(SocketShutdown.Send);
            Task<long> drain = Task.Run(() => Drain(server), Ct);
            await transport.WaitForCompletionsAsync(TimeSpan.FromSeconds(10), Ct);
            Assert.Equal(32L * PageSize, await drain);
            Assert.Equal(0, transport.Stats.Outstanding);
        }
    }

    [Fact]
    public async Task Copy_mode_has_nothing_to_wait_for()
    {
        using NativeGuest source = NativeGuest.Create(1 << 20);
        (Socket client, Socket server) = await PairAsync();
        using (client)
        using (server)
        {
            using var transport = new ZeroCopySocketWriter(client);
            Task<long> drain = Task.Run(() => Drain(server), Ct);
            (_, ReadOnlyMemory<byte>[] payloads) = source.Batch(Enumerable.Range(0, 64).Select(p => (long)p));
            await transport.WriteAsync(payloads, Ct);
            await transport.FlushAsync(Ct);
            await transport.WaitForCompletionsAsync(TimeSpan.Zero, Ct);
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal(64L * PageSize, await drain);
            Assert.Equal(0, transport.Stats.Issued);
            Assert.Equal(0, transport.Stats.ZeroCopyBytes);
        }
    }
}
