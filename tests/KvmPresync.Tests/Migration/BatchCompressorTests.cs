using KvmPresync.Migration.Compression;
using KvmPresync.Wire;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// The compressed-batch pipeline: batches compress side by side but leave in order, each with its own pages; a send drains
/// the last write; a failed write surfaces at the drain and, once abandoned, never again.
/// </summary>
public sealed class BatchCompressorTests
{
    private const HelloOptions Compressed = HelloOptions.ZeroPages | HelloOptions.CompressedPages;
    private const int PagesPerBatch = 4; // 12 batches fit the layout's first slot (pages 0..63)

    /// <summary>Compressible pages that name their batch and page: a run of one byte, then the batch's number.</summary>
    private static byte[][] BatchPages(int batch)
    {
        var pages = new byte[PagesPerBatch][];
        for (int i = 0; i < PagesPerBatch; i++)
        {
            pages[i] = new byte[PageSize];
            Array.Fill(pages[i], (byte)(batch * 7 + i));
            BitConverter.TryWriteBytes(pages[i].AsSpan(100), batch * 1000 + i);
        }
        return pages;
    }

    private static PageDescriptor[] Descriptors(int batch) =>
        Enumerable.Range(0, PagesPerBatch).Select(i => new PageDescriptor((ulong)(batch * PagesPerBatch + i), PageKind.Full, (ulong)batch)).ToArray();

    [Theory]
    [InlineData(CompressionMode.Lz4)]
    [InlineData(CompressionMode.Zstd)]
    public async Task Batches_compressed_side_by_side_leave_in_order_each_with_its_own_pages(CompressionMode mode)
    {
        MemoryLayout layout = TwoSlotLayout();
        var stream = new MemoryStream();
        var writer = new FrameWriter(stream);
        writer.UseSession(layout, Compressed);
        using var compressor = new BatchCompressor(mode, 1e9 / 8);
        const int batches = 12;
        for (int b = 0; b < batches; b++)
            await compressor.WriteAsync(writer, (ulong)b, Descriptors(b), BatchPages(b).Select(p => (ReadOnlyMemory<byte>)p).ToList(), Ct);
        await compressor.DrainAsync();
        Assert.Equal(batches, compressor.Stats().Lz4Batches + compressor.Stats().ZstdBatches);

        var reader = ReaderOver(stream.ToArray(), layout, Compressed);
        byte[] got = new byte[PageSize];
        for (int b = 0; b < batches; b++)
        {
            PageBatch batch = await reader.ReadPageBatchAsync(await reader.ReadHeaderAsync(Ct), Ct);
            Assert.Equal((ulong)b, batch.RoundId);
            Assert.NotEqual(PageCodec.None, batch.Codec);
            Assert.Equal(Descriptors(b), batch.Descriptors.ToArray());
            byte[][] expected = BatchPages(b);
            for (int i = 0; i < PagesPerBatch; i++)
            {
                await reader.ReadPayloadAsync(got, Ct);
                Assert.Equal(expected[i], got);
            }
        }
        Assert.Equal(stream.Length, reader.BytesRead);
    }

    [Fact]
    public async Task A_failed_write_surfaces_at_the_drain_and_once_abandoned_never_again()
    {
        MemoryLayout layout = TwoSlotLayout();
        var writer = new FrameWriter(new FailingStream());
        writer.UseSession(layout, Compressed);
        using var compressor = new BatchCompressor(CompressionMode.Lz4, 1e9 / 8);
        await compressor.WriteAsync(writer, 1, Descriptors(1), BatchPages(1).Select(p => (ReadOnlyMemory<byte>)p).ToList(), Ct); // returns before the write
        var e = await Assert.ThrowsAsync<ProtocolException>(() => compressor.DrainAsync());
        Assert.Contains("link down", e.Message);
        compressor.Abandon();
        await compressor.DrainAsync(); // a new connection's sends do not inherit the old failure

        var stream = new MemoryStream();
        var fresh = new FrameWriter(stream);
        fresh.UseSession(layout, Compressed);
        await compressor.WriteAsync(fresh, 2, Descriptors(2), BatchPages(2).Select(p => (ReadOnlyMemory<byte>)p).ToList(), Ct);
        await compressor.DrainAsync();
        Assert.True(stream.Length > 0);
    }

    private sealed class FailingStream : MemoryStream
    {
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromException(new IOException("link down"));

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.FromException(new IOException("link down"));

        public override void Write(ReadOnlySpan<byte> buffer) => throw new IOException("link down");
    }
}
