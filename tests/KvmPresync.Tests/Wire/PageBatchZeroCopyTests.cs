using KvmPresync.Memory;
using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using KvmPresync.Wire;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Wire;

/// <summary>Page payloads move between guest memory and the wire without intermediate copies, and only where asked.</summary>
public sealed class PageBatchZeroCopyTests
{
    private static unsafe nint AllocPages(int pages) => (nint)NativeMemory.AlignedAlloc((nuint)(pages * PageSize), PageSize);

    private static unsafe void FreePages(nint memory) => NativeMemory.AlignedFree((void*)memory);

    /// <summary>Records what the writer hands to the transport.</summary>
    private sealed class CapturingTransport : IGatherWriter
    {
        public List<ReadOnlyMemory<byte>> Segments { get; } = [];
        public MemoryStream Bytes { get; } = new();

        public ValueTask WriteAsync(IReadOnlyList<ReadOnlyMemory<byte>> segments, CancellationToken cancellationToken)
        {
            foreach (ReadOnlyMemory<byte> s in segments)
            {
                Segments.Add(s);
                Bytes.Write(s.Span);
            }
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task ReadPayload_writes_only_into_the_given_span_canaries_untouched()
    {
        MemoryLayout layout = TwoSlotLayout();
        var stream = new MemoryStream();
        var writer = new FrameWriter(stream);
        writer.UseSession(layout, HelloOptions.All);
        byte[] page = PatternPage(9);
        await writer.WritePageBatchAsync(1, new PageDescriptor[] { new(9, PageKind.Full, 1) }, [page], Ct);

        // "Guest memory": canary, one page, canary.
        byte[] guest = new byte[3 * PageSize];
        guest.AsSpan().Fill(0xCC);
        var reader = ReaderOver(stream.ToArray(), layout);
        await reader.ReadPageBatchAsync(await reader.ReadHeaderAsync(Ct), Ct);
        reader.ReadPayload(guest.AsSpan(PageSize, PageSize));

        Assert.True(guest.AsSpan(0, PageSize).IndexOfAnyExcept((byte)0xCC) < 0, "canary before the page was written");
        Assert.True(guest.AsSpan(2 * PageSize).IndexOfAnyExcept((byte)0xCC) < 0, "canary after the page was written");
        Assert.Equal(page, guest.AsSpan(PageSize, PageSize).ToArray());
    }

    [Fact]
    public async Task ReadPayload_requires_exactly_one_page()
    {
        MemoryLayout layout = TwoSlotLayout();
        var stream = new MemoryStream();
        var writer = new FrameWriter(stream);
        writer.UseSession(layout, HelloOptions.All);
        await writer.WritePageBatchAsync(1, new PageDescriptor[] { new(9, PageKind.Full, 1) }, [PatternPage(1)], Ct);
        var reader = ReaderOver(stream.ToArray(), layout);
        await reader.ReadPageBatchAsync(await reader.ReadHeaderAsync(Ct), Ct);
        Assert.Throws<ArgumentException>(() => reader.ReadPayload(new byte[PageSize + 1]));
        Assert.Throws<ArgumentException>(() => reader.ReadPayload(new byte[PageSize - 1]));
        Assert.Equal(1, reader.PayloadsRemaining);
    }

    [Fact]
    public async Task Writer_hands_payload_memory_to_the_transport_as_is_without_copying()
    {
        MemoryLayout layout = TwoSlotLayout();
        byte[] guest = new byte[64 * PageSize];
        Random.Shared.NextBytes(guest);
        var transport = new CapturingTransport();
        var writer = new FrameWriter(transport);
        writer.UseSession(layout, HelloOptions.All);
        ReadOnlyMemory<byte> p2 = guest.AsMemory(2 * PageSize, PageSize), p7 = guest.AsMemory(7 * PageSize, PageSize);
        await writer.WritePageBatchAsync(4, new PageDescriptor[] { new(2, PageKind.Full, 0), new(7, PageKind.Full, 0) }, [p2, p7], Ct);

        Assert.Equal(3, transport.Segments.Count); // header+descriptors, then the two pages
        Assert.True(MemoryMarshal.TryGetArray(transport.Segments[1], out ArraySegment<byte> s1));
        Assert.True(MemoryMarshal.TryGetArray(transport.Segments[2], out ArraySegment<byte> s2));
        Assert.Same(guest, s1.Array);
        Assert.Equal(2 * PageSize, s1.Offset);
        Assert.Same(guest, s2.Array);
        Assert.Equal(7 * PageSize, s2.Offset);
        Assert.Equal(FrameHeader.Size + 16 + 2 * 24, transport.Segments[0].Length);
    }

    [Fact]
    public async Task Writer_validates_payload_count_size_and_pages_like_the_reader()
    {
        var writer = new FrameWriter(new CapturingTransport());
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await writer.WritePageBatchAsync(1, Array.Empty<PageDescriptor>(), [], Ct));
        writer.UseSession(TwoSlotLayout(), HelloOptions.None);
        PageDescriptor[] one = [new(1, PageKind.Full, 0)];
        await Assert.ThrowsAsync<ArgumentException>(async () => await writer.WritePageBatchAsync(1, one, [], Ct));
        await Assert.ThrowsAsync<ArgumentException>(async () => await writer.WritePageBatchAsync(1, one, [new byte[100]], Ct));
        await Assert.ThrowsAsync<ArgumentException>(async () => await writer.WritePageBatchAsync(1, new PageDescriptor[] { new(64, PageKind.Full, 0) }, [new byte[PageSize]], Ct));
        await Assert.ThrowsAsync<ArgumentException>(async () => await writer.WritePageBatchAsync(1, new PageDescriptor[] { new(1, PageKind.Zero, 0) }, [], Ct));
    }

    [Fact]
    public async Task Adjacent_guest_pages_from_native_memory_are_sent_as_one_run_over_a_socket_and_land_in_native_memory()
    {
        const int pages = 32;
        MemoryLayout layout = MemoryLayout.SingleSlot(PageSize, pages * PageSize);
        nint source = AllocPages(pages);
        nint destination = AllocPages(pages + 2);
        try
        {
            var sourceManager = new UnmanagedMemoryManager(source, pages * PageSize);
            var destinationManager = new UnmanagedMemoryManager(destination, (pages + 2) * PageSize);
            Random.Shared.NextBytes(sourceManager.GetSpan());
            destinationManager.GetSpan().Fill(0xCC);
            Memory<byte> guestOut = sourceManager.Memory, guestIn = destinationManager.Memory[PageSize..^PageSize];

            (Socket client, Socket server) = await LoopbackPairAsync();
            using (client)
            using (server)
            {
                var socketWriter = new SocketGatherWriter(client);
                var writer = new FrameWriter(socketWriter);
                writer.UseSession(layout, HelloOptions.All);
                var reader = new FrameReader(new NetworkStream(server));
                reader.UseSession(layout, HelloOptions.All);

                // Pages 4..11 (contiguous run), 20, 21 (run), 30 — plus a zero page in between.
                ulong[] full = [4, 5, 6, 7, 8, 9, 10, 11, 20, 21, 30];
                var descriptors = full.Select(p => new PageDescriptor(p, PageKind.Full, p)).Append(new PageDescriptor(15, PageKind.Zero, 0)).ToArray();
                var payloads = full.Select(p => (ReadOnlyMemory<byte>)guestOut.Slice((int)p * PageSize, PageSize)).ToArray();
                Task send = writer.WritePageBatchAsync(12, descriptors, payloads, Ct).AsTask();

                PageBatch batch = await reader.ReadPageBatchAsync(await reader.ReadHeaderAsync(Ct), Ct);
                foreach (PageDescriptor d in batch.Descriptors.ToArray())
                {
                    if (d.Kind != PageKind.Full) continue;
                    PageLocation at = layout.Locate(d.PageNumber);
                    await reader.ReadPayloadAsync(guestIn.Slice((int)at.OffsetInSlot, PageSize), Ct);
                }
                await send;

                // One sendmsg for header+descriptors, then one send per contiguous run: 4..11, 20..21, 30.
                Assert.Equal(4, socketWriter.SendCalls);
                foreach (ulong p in full)
                    Assert.True(guestOut.Span.Slice((int)p * PageSize, PageSize).SequenceEqual(guestIn.Span.Slice((int)p * PageSize, PageSize)), $"page {p}");
                Assert.True(guestIn.Span.Slice(15 * PageSize, PageSize).IndexOfAnyExcept((byte)0xCC) < 0, "zero page has no payload");
                Span<byte> all = destinationManager.GetSpan();
                Assert.True(all[..PageSize].IndexOfAnyExcept((byte)0xCC) < 0);
                Assert.True(all[^PageSize..].IndexOfAnyExcept((byte)0xCC) < 0);
            }
        }
        finally
        {
            FreePages(source);
            FreePages(destination);
        }
    }

    [Fact]
    public async Task Array_backed_pages_go_out_in_a_single_gather_send()
    {
        MemoryLayout layout = TwoSlotLayout();
        byte[] guest = new byte[64 * PageSize];
        Random.Shared.NextBytes(guest);
        (Socket client, Socket server) = await LoopbackPairAsync();
        using (client)
        using (server)
        {
            var socketWriter = new SocketGatherWriter(client);
            var writer = new FrameWriter(socketWriter);
            writer.UseSession(layout, HelloOptions.All);
            ulong[] pages = [1, 3, 5, 40];
            await writer.WritePageBatchAsync(2, pages.Select(p => new PageDescriptor(p, PageKind.Full, 0)).ToArray(),
                pages.Select(p => (ReadOnlyMemory<byte>)guest.AsMemory((int)p * PageSize, PageSize)).ToArray(), Ct);
            Assert.Equal(1, socketWriter.SendCalls);

            var reader = new FrameReader(new NetworkStream(server));
            reader.UseSession(layout, HelloOptions.All);
            await reader.ReadPageBatchAsync(await reader.ReadHeaderAsync(Ct), Ct);
            byte[] got = new byte[PageSize];
            foreach (ulong p in pages)
            {
                reader.ReadPayload(got);
                Assert.Equal(guest.AsSpan((int)p * PageSize, PageSize).ToArray(), got);
            }
        }
    }

    [Fact]
    public unsafe void UnmanagedMemoryManager_pins_inside_its_range_only()
    {
        nint mem = (nint)NativeMemory.Alloc(64);
        try
        {
            var manager = new UnmanagedMemoryManager(mem, 64);
            using (MemoryHandle h = manager.Pin(10))
                Assert.Equal(mem + 10, (nint)h.Pointer);
            Assert.Throws<ArgumentOutOfRangeException>(() => manager.Pin(65));
            Assert.Equal(64, manager.Memory.Length);
        }
        finally
        {
            NativeMemory.Free((void*)mem);
        }
    }
}
