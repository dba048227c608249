using System.Buffers.Binary;
using K4os.Compression.LZ4;
using KvmPresync.Wire;
using ZstdSharp;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Wire;

/// <summary>
/// Protocol 1.3 compressed PageBatch: round trips through the writer and reader for each codec, and every field of a hostile
/// one (codec, lengths, body length, payload that is garbage, a bomb, or short) is refused with its own error before a page
/// is handed out.
/// </summary>
public sealed class CompressedBatchTests
{
    private const HelloOptions Compressed = HelloOptions.ZeroPages | HelloOptions.CompressedPages;

    private static byte[] Descriptor(ulong page, PageKind kind)
    {
        byte[] d = new byte[24];
        BinaryPrimitives.WriteUInt64LittleEndian(d, page);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(8), (uint)kind);
        return d;
    }

    /// <summary>A compressed batch as bytes, every field given (so each can lie).</summary>
    private static byte[] Batch(uint codec, byte[][] descriptors, uint compressedLength, uint rawLength, byte[] payload, ulong? declaredLength = null)
    {
        byte[] prefix = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, 7);
        BinaryPrimitives.WriteUInt32LittleEndian(prefix.AsSpan(8), (uint)descriptors.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(prefix.AsSpan(12), codec);
        byte[] lengths = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(lengths, compressedLength);
        BinaryPrimitives.WriteUInt32LittleEndian(lengths.AsSpan(4), rawLength);
        byte[] body = Concat([prefix, .. descriptors, lengths, payload]);
        return Frame(FrameType.PageBatch, body, declaredLength: declaredLength);
    }

    private static byte[] Pages(int count, int seed)
    {
        // compressible but not trivial: a repeated pattern with a per-page twist
        byte[] raw = new byte[count * PageSize];
        for (int i = 0; i < raw.Length; i++) raw[i] = (byte)((i / 64 + seed) % 7 == 0 ? i * 13 + seed : (i % 64) + seed);
        return raw;
    }

    private static byte[] Lz4(byte[] raw)
    {
        byte[] o = new byte[LZ4Codec.MaximumOutputSize(raw.Length)];
        return o[..LZ4Codec.Encode(raw, o, LZ4Level.L00_FAST)];
    }

    private static byte[] Zstd(byte[] raw)
    {
        using var c = new Compressor(1);
        return c.Wrap(raw).ToArray();
    }

    private static async Task<ProtocolException> Refused(byte[] frame, HelloOptions options = Compressed, byte[]? destination = null) =>
        await ReadFails(ReaderOver(frame, TwoSlotLayout(), options), async (r, h) =>
        {
            PageBatch batch = await r.ReadPageBatchAsync(h, Ct);
            byte[] page = destination ?? new byte[PageSize];
            for (int i = 0; i < batch.FullPages; i++) await r.ReadPayloadAsync(page, Ct);
        });

    [Theory]
    [InlineData(PageCodec.Lz4)]
    [InlineData(PageCodec.Zstd)]
    public async Task Compressed_batch_round_trips_page_for_page_and_reports_its_codec(PageCodec codec)
    {
        MemoryLayout layout = TwoSlotLayout();
        byte[] raw = Pages(3, 1);
        byte[] compressed;
        using (var codecs = new PageCompression())
        {
            byte[] o = new byte[PageCompression.MaxCompressedLength(codec, raw.Length)];
            compressed = o[..codecs.Compress(codec, raw, o)];
        }
        Assert.True(compressed.Length < raw.Length / 4);
        PageDescriptor[] descriptors = [new(3, PageKind.Full, 1), new(4, PageKind.Zero, 2), new(257, PageKind.Full, 3), new(9, PageKind.Full, 4)];

        var stream = new MemoryStream();
        var writer = new FrameWriter(stream);
        writer.UseSession(layout, Compressed);
        await writer.WriteCompressedPageBatchAsync(11, descriptors, codec, compressed, Ct);
        Assert.Equal(FrameHeader.Size + (long)PageBatch.CompressedBodyLength(4, compressed.Length), stream.Length);

        var reader = ReaderOver(stream.ToArray(), layout, Compressed);
        FrameHeader h = await reader.ReadHeaderAsync(Ct);
        PageBatch batch = await reader.ReadPageBatchAsync(h, Ct);
        Assert.Equal(codec, batch.Codec);
        Assert.Equal(compressed.Length, batch.CompressedLength);
        Assert.Equal(3, batch.FullPages);
        Assert.Equal(descriptors, batch.Descriptors.ToArray());
        byte[] page = new byte[PageSize];
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(descriptors[i == 0 ? 0 : i + 1].PageNumber, reader.NextPayloadDescriptor.PageNumber);
            if (i == 1) reader.ReadPayload(page); else await reader.ReadPayloadAsync(page, Ct);
            Assert.Equal(raw.AsSpan(i * PageSize, PageSize).ToArray(), page);
        }
        Assert.Equal(stream.Length, reader.BytesRead);
    }

    [Fact]
    public async Task A_raw_batch_is_unchanged_by_1_3_and_reads_the_same_with_or_without_CompressedPages()
    {
        MemoryLayout layout = TwoSlotLayout();
        byte[] page = PatternPage(5);
        var stream = new MemoryStream();
        var writer = new FrameWriter(stream);
        writer.UseSession(layout, Compressed);
        await writer.WritePageBatchAsync(2, new PageDescriptor[] { new(5, PageKind.Full, 9) }, [page], Ct);
        byte[] bytes = stream.ToArray();
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(FrameHeader.Size + 12))); // codec None = the old reserved 0
        foreach (HelloOptions options in new[] { HelloOptions.ZeroPages, Compressed })
        {
            var reader = ReaderOver(bytes, layout, options);
            PageBatch batch = await reader.ReadPageBatchAsync(await reader.ReadHeaderAsync(Ct), Ct);
            Assert.Equal(PageCodec.None, batch.Codec);
            byte[] got = new byte[PageSize];
            await reader.ReadPayloadAsync(got, Ct);
            Assert.Equal(page, got);
        }
    }

    [Fact]
    public async Task Codec_without_negotiated_CompressedPages_is_refused_as_a_reserved_field()
    {
        byte[] raw = Pages(1, 0);
        byte[] c = Lz4(raw);
        var e = await Refused(Batch(1, [Descriptor(3, PageKind.Full)], (uint)c.Length, PageSize, c), HelloOptions.ZeroPages);
        Assert.Equal(ProtocolError.UnknownFlags, e.Error);
        Assert.Equal("PageBatch.codec", e.Field);
        Assert.Contains("did not negotiate CompressedPages", e.Message);
    }

    [Theory]
    [InlineData(3u)]
    [InlineData(0x80000001u)]
    public async Task Unknown_codec_is_refused(uint codec)
    {
        var e = await Refused(Batch(codec, [Descriptor(3, PageKind.Full)], 10, PageSize, new byte[10]));
        Assert.Equal(ProtocolError.UnknownFlags, e.Error);
        Assert.Contains($"codec {codec} is not None (0), Lz4 (1) or Zstd (2)", e.Message);
    }

    [Fact]
    public async Task Compressed_batch_without_a_Full_page_is_refused()
    {
        var e = await Refused(Batch(1, [Descriptor(3, PageKind.Zero)], 1, 0, [0]));
        Assert.Equal(ProtocolError.InvalidField, e.Error);
        Assert.Contains("none of its 1 descriptors is Full", e.Message);
    }

    [Fact]
    public async Task Compressed_batch_standing_for_more_than_4_MiB_is_refused_before_its_lengths_are_read()
    {
        int pages = WireLimits.MaxCompressedBatchBytes / PageSize + 1; // 1025
        MemoryLayout layout = MemoryLayout.SingleSlot(PageSize, 2048L * PageSize);
        byte[][] descriptors = Enumerable.Range(0, pages).Select(i => Descriptor((ulong)i, PageKind.Full)).ToArray();
        byte[] prefix = Batch(2, descriptors, 0, 0, [])[..^8]; // header + prefix + descriptors, nothing after
        var e = await ReadFails(ReaderOver(prefix, layout, Compressed), async (r, h) => await r.ReadPageBatchAsync(h, Ct));
        Assert.Equal(ProtocolError.FrameTooLarge, e.Error);
        Assert.Contains("exceed the 4194304 bytes a compressed batch may stand for", e.Message);
    }

    [Fact]
    public async Task Raw_length_other_than_the_Full_pages_is_refused()
    {
        byte[] c = Lz4(Pages(2, 0));
        var e = await Refused(Batch(1, [Descriptor(3, PageKind.Full)], (uint)c.Length, 2 * PageSize, c));
        Assert.Equal(ProtocolError.InvalidField, e.Error);
        Assert.Equal("PageBatch.rawLength", e.Field);
        Assert.Contains("raw length is 8192 bytes, its 1 Full pages of 4096 bytes are 4096", e.Message);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(4096u)]
    [InlineData(0xFFFFFFFFu)]
    public async Task Compressed_length_zero_or_not_smaller_than_raw_is_refused_before_the_payload_is_read(uint compressedLength)
    {
        // only the frame up to the lengths is in the stream (reading on would report Truncated); the declared body is plausible
        byte[] frame = Batch(2, [Descriptor(3, PageKind.Full)], compressedLength, PageSize, [], declaredLength: 16 + 24 + 8 + 100);
        var e = await Refused(frame);
        Assert.Equal(ProtocolError.InvalidField, e.Error);
        Assert.Equal("PageBatch.compressedLength", e.Field);
        Assert.Contains("must be 1 … 4095", e.Message);
    }

    [Fact]
    public async Task Body_length_that_disagrees_with_the_compressed_length_is_refused()
    {
        byte[] c = Lz4(Pages(1, 0));
        var e = await Refused(Batch(1, [Descriptor(3, PageKind.Full)], (uint)c.Length, PageSize, c, declaredLength: 16 + 24 + 8 + (ulong)c.Length + 1));
        Assert.Equal(ProtocolError.BodyLengthMismatch, e.Error);
        e = await Refused(Batch(1, [Descriptor(3, PageKind.Full)], (uint)c.Length, PageSize, c, declaredLength: 16 + 24 + 4));
        Assert.Equal(ProtocolError.BodyLengthMismatch, e.Error);
    }

    public static TheoryData<string, uint, byte[], string> HostilePayloads()
    {
        byte[] twoPages = Pages(2, 3);
        byte[] halfPage = Pages(1, 3)[..(PageSize / 2)];
        byte[] garbage = new byte[900];
        new Random(12).NextBytes(garbage);
        byte[] zstdBomb = Zstd(new byte[64 << 20]); // 64 MiB of zeros in a few KiB
        byte[] lz4Bomb = Lz4(new byte[512 << 10]); // 512 KiB of zeros in ~2 KiB
        byte[] zstdOnePage = Zstd(Pages(1, 3));
        return new()
        {
            { "lz4 garbage", 1, garbage, "the LZ4 decoder refused it" },
            { "zstd garbage", 2, garbage, "not a zstd frame" },
            { "lz4 of two pages for one (overflow)", 1, Lz4(twoPages), "the LZ4 decoder refused it" },
            { "zstd of two pages for one", 2, Zstd(twoPages), "its frame header declares 8192 bytes" },
            { "lz4 of half a page", 1, Lz4(halfPage), "it decompressed to 2048 bytes" },
            { "zstd of half a page", 2, Zstd(halfPage), "its frame header declares 2048 bytes" },
            { "lz4 bomb (512 KiB of zeros)", 1, lz4Bomb, "the LZ4 decoder refused it" },
            { "zstd bomb (64 MiB of zeros)", 2, zstdBomb, "declares 67108864 bytes" },
            { "zstd frame cut short", 2, zstdOnePage[..(zstdOnePage.Length / 2)], "zstd" },
            { "lz4 block cut short", 1, Lz4(Pages(1, 3))[..20], "decompress" },
        };
    }

    [Theory]
    [MemberData(nameof(HostilePayloads))]
    public async Task Payload_that_does_not_decompress_to_exactly_its_pages_is_refused_and_hands_out_nothing(string name, uint codec, byte[] payload, string why)
    {
        Assert.True(payload.Length < PageSize, name);
        byte[] destination = new byte[PageSize];
        Array.Fill(destination, (byte)0x5A);
        var e = await Refused(Batch(codec, [Descriptor(3, PageKind.Full)], (uint)payload.Length, PageSize, payload), destination: destination);
        Assert.Equal(ProtocolError.InvalidField, e.Error);
        Assert.Equal("PageBatch.payload", e.Field);
        Assert.Contains($"PageBatch round 7: the {(PageCodec)codec} payload ({payload.Length} bytes) must decompress to exactly 4096 bytes", e.Message);
        Assert.Contains(why, e.Message);
        Assert.All(destination, b => Assert.Equal(0x5A, b)); // ReadPageBatchAsync failed: no payload was handed out
        Assert.False(e.IsRetryable);
    }

    [Fact]
    public async Task Writer_refuses_a_compressed_batch_it_may_not_send()
    {
        var writer = new FrameWriter(new MemoryStream());
        writer.UseSession(TwoSlotLayout(), HelloOptions.ZeroPages);
        PageDescriptor[] one = [new(3, PageKind.Full, 0)];
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await writer.WriteCompressedPageBatchAsync(1, one, PageCodec.Lz4, new byte[10], Ct));
        writer.UseSession(TwoSlotLayout(), Compressed);
        await Assert.ThrowsAsync<ArgumentException>(async () => await writer.WriteCompressedPageBatchAsync(1, one, PageCodec.Lz4, new byte[PageSize], Ct));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await writer.WriteCompressedPageBatchAsync(1, one, PageCodec.None, new byte[10], Ct));
        await Assert.ThrowsAsync<ArgumentException>(async () => await writer.WriteCompressedPageBatchAsync(1, new PageDescriptor[] { new(3, PageKind.Zero, 0) }, PageCodec.Lz4, new byte[10], Ct));
    }

    [Fact]
    public async Task A_1_2_session_never_gets_CompressedPages()
    {
        using var key = new PreSharedKey(Enumerable.Repeat((byte)3, 32).ToArray());
        MemoryLayout layout = MemoryLayout.SingleSlot(4096, 1 << 20);
        foreach ((ProtocolVersion sender, ProtocolVersion receiver) in new[] { (new ProtocolVersion(1, 2), ProtocolVersion.Current), (ProtocolVersion.Current, new ProtocolVersion(1, 2)) })
        {
            var toReceiver = new System.IO.Pipelines.Pipe();
            var toSender = new System.IO.Pipelines.Pipe();
            Task<HandshakeResult> r = Handshake.RunReceiverAsync(new FrameReader(toReceiver.Reader.AsStream()), new FrameWriter(toSender.Writer.AsStream()),
                new ReceiverHandshakeOptions { Version = receiver }, key, Ct);
            HandshakeResult s = await Handshake.RunSenderAsync(new FrameReader(toSender.Reader.AsStream()), new FrameWriter(toReceiver.Writer.AsStream()),
                new SenderHandshakeOptions(layout, PageHashAlgorithm.PageHasher, Compressed) { Version = sender }, key, Ct);
            Assert.Equal(2, s.Version.Minor);
            Assert.Equal(HelloOptions.ZeroPages, s.Options);
            Assert.Equal(HelloOptions.ZeroPages, (await r).Options);
        }
        // and at 1.3 it is accepted
        var a = new System.IO.Pipelines.Pipe();
        var b = new System.IO.Pipelines.Pipe();
        Task<HandshakeResult> r3 = Handshake.RunReceiverAsync(new FrameReader(a.Reader.AsStream()), new FrameWriter(b.Writer.AsStream()), new ReceiverHandshakeOptions(), key, Ct);
        HandshakeResult s3 = await Handshake.RunSenderAsync(new FrameReader(b.Reader.AsStream()), new FrameWriter(a.Writer.AsStream()),
            new SenderHandshakeOptions(layout, PageHashAlgorithm.PageHasher, Compressed), key, Ct);
        Assert.Equal(new ProtocolVersion(1, 3), s3.Version);
        Assert.Equal(Compressed, s3.Options);
        Assert.Equal(Compressed, (await r3).Options);
    }
}
