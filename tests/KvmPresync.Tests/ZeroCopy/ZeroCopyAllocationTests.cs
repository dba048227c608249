using System.Net.Sockets;
using KvmPresync.Wire;
using static KvmPresync.Tests.ZeroCopy.ZeroCopyTestSupport;

namespace KvmPresync.Tests.ZeroCopy;

/// <summary>Tests that must run alone: process-wide allocation bounds and guest-rate checks, which parallel tests would distort.</summary>
[CollectionDefinition(nameof(ProcessAllocationCollection), DisableParallelization = true)]
public sealed class ProcessAllocationCollection;

/// <summary>
/// No managed copy of page payload: sending 1 GiB from the guest mapping through FrameWriter and the zero-copy
/// writer allocates a tiny fraction of the payload on the managed heap (a copy would allocate or touch buffers of
/// the payload's size; here only per-frame bookkeeping remains).
/// </summary>
[Collection(nameof(ProcessAllocationCollection))]
public sealed class ZeroCopyAllocationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Sending_1_GiB_from_guest_memory_allocates_under_1_percent_of_the_payload(bool zeroCopy)
    {
        const int pagesPerFrame = 256;
        const long totalPayload = 1L << 30;
        const int frameCount = (int)(totalPayload / (pagesPerFrame * PageSize));
        using NativeGuest source = NativeGuest.Create(16 << 20);
        (Socket client, Socket server) = await PairAsync();
        using (client)
        using (server)
        {
            using var transport = new ZeroCopySocketWriter(client, new ZeroCopyWriterOptions { ZeroCopy = zeroCopy });
            FrameWriter writer = Writer(transport, source.Layout);
            // Every other page, so each frame is 256 separate iovecs; 8 distinct frames span the 16 MiB mapping.
            var batches = Enumerable.Range(0, 8)
                .Select(b => source.Batch(Enumerable.Range(0, pagesPerFrame).Select(i => 2L * (b * pagesPerFrame + i))))
                .ToArray();
            var receiver = new Thread(() => Drained = Drain(server)) { IsBackground = true };
            receiver.Start();
            for (int f = 0; f < 16; f++) // warm up: pools, pins, async machinery
                await writer.WritePageBatchAsync(1, batches[f % 8].Descriptors, batches[f % 8].Payloads, Ct);

            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int f = 0; f < frameCount; f++)
                await writer.WritePageBatchAsync(2, batches[f % 8].Descriptors, batches[f % 8].Payloads, Ct);
            long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

            await transport.WaitForCompletionsAsync(TimeSpan.FromSeconds(30), Ct);
            client.Shutdown(SocketShutdown.Send);
            receiver.Join();
            Assert.Equal(writer.BytesWritten, Drained);
            Assert.Equal(totalPayload + 16L * pagesPerFrame * PageSize, transport.Stats.PayloadBytes);
            Assert.True(allocated < totalPayload / 100,
                $"{allocated} bytes allocated while sending {totalPayload} bytes of payload in {frameCount} frames ({(double)allocated / frameCount:0} per frame)");
            TestContext.Current.SendDiagnosticMessage($"zeroCopy={zeroCopy}: {allocated} bytes allocated for {frameCount} frames; {transport.Stats}");
        }
    }

    private long Drained { get; set; }
}
