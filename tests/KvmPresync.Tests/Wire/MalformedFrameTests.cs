using System.Buffers.Binary;
using KvmPresync.Wire;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Wire;

/// <summary>Every malformed frame is refused with a ProtocolException carrying the right code and a message that says what failed.</summary>
public sealed class MalformedFrameTests
{
    private static byte[] Descriptor(ulong page, uint kind, ulong hash = 0, uint reserved = 0)
    {
        byte[] d = new byte[24];
        BinaryPrimitives.WriteUInt64LittleEndian(d, page);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(8), kind);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(12), reserved);
        BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(16), hash);
        return d;
    }

    private static byte[] BatchPrefix(ulong round, uint count, uint reserved = 0)
    {
        byte[] p = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(p, round);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(8), count);
        BinaryPrimitives.WriteUInt32LittleEndian(p.AsSpan(12), reserved);
        return p;
    }

    private static Task<ProtocolException> ReadBatchFails(byte[] stream, MemoryLayout layout, HelloOptions options = HelloOptions.All) =>
        ReadFails(ReaderOver(stream, layout, options), async (r, h) =>
        {
            PageBatch batch = await r.ReadPageBatchAsync(h, Ct);
            byte[] page = new byte[PageSize];
            for (int i = 0; i < batch.FullPages; i++) await r.ReadPayloadAsync(page, Ct);
        });

    [Fact]
    public async Task Truncated_header_says_how_many_header_bytes_arrived()
    {
        byte[] header = Frame(FrameType.Ping, new byte[8])[..3];
        var e = await Assert.ThrowsAsync<ProtocolException>(async () => await ReaderOver(header).ReadHeaderAsync(Ct));
        Assert.Equal(ProtocolError.Truncated, e.Error);
        Assert.Equal("connection closed after 3 of 16 header bytes", e.Message);
    }

    [Fact]
    public async Task Eof_exactly_at_a_frame_boundary_is_peer_closed_not_truncated()
    {
        var reader = ReaderOver(Frame(FrameType.Ping, new byte[8]));
        Assert.Equal(new Ping(0), await reader.ReadBodyAsync<Ping>(await reader.ReadHeaderAsync(Ct), Ct));
        var e = await Assert.ThrowsAsync<ProtocolException>(async () => await reader.ReadHeaderAsync(Ct));
        Assert.Equal(ProtocolError.PeerClosed, e.Error);
        Assert.True(e.IsRetryable);
    }

    [Fact]
    public async Task Truncated_body_is_reported_with_byte_counts()
    {
        byte[] bytes = Frame(FrameType.RoundEnd, new byte[48])[..(16 + 10)];
        var e = await ReadFails(ReaderOver(bytes), async (r, h) => await r.ReadBodyAsync<RoundEnd>(h, Ct));
        Assert.Equal(ProtocolError.Truncated, e.Error);
        Assert.Equal("connection closed after 10 of 48 bytes of the RoundEnd body", e.Message);
    }

    [Fact]
    public async Task Truncated_page_payload_names_the_payload_and_page()
    {
        MemoryLayout layout = TwoSlotLayout();
        byte[] body = Concat(BatchPrefix(1, 1), Descriptor(5, 1), new byte[100]);
        byte[] bytes = Frame(FrameType.PageBatch, body, declaredLength: PageBatch.BodyLength(1, 1, PageSize));
        var e = await ReadBatchFails(bytes, layout);
        Assert.Equal(ProtocolError.Truncated, e.Error);
        Assert.Equal("connection closed after 100 of 4096 bytes of the PageBatch payload 0 (descriptor 0, page 5)", e.Message);
    }

    [Fact]
    public async Task Page_number_outside_the_layout_is_refused()
    {
        MemoryLayout layout = MemoryLayout.SingleSlot(PageSize, 256UL << 20); // 65536 pages
        var descriptors = Enumerable.Range(0, 17).Select(i => Descriptor((ulong)i, 2)).Append(Descriptor(70000, 2)).ToArray();
        byte[] bytes = Frame(FrameType.PageBatch, Concat([BatchPrefix(1, 18), .. descriptors]));
        var e = await ReadBatchFails(bytes, layout);
        Assert.Equal(ProtocolError.PageOutOfRange, e.Error);
        Assert.Equal("PageBatch descriptor 17: page 70000 is outside the announced layout (65536 pages)", e.Message);
        Assert.Equal("PageBatch.descriptor[17].page", e.Field);
        Assert.Equal(70000UL, e.Value);
    }

    [Fact]
    public async Task Page_in_the_gap_between_slots_is_refused()
    {
        byte[] bytes = Frame(FrameType.PageBatch, Concat(BatchPrefix(1, 1), Descriptor(100, 2))); // slots hold 0..63 and 256..271
        var e = await ReadBatchFails(bytes, TwoSlotLayout());
        Assert.Equal(ProtocolError.PageOutOfRange, e.Error);
    }

    [Fact]
    public async Task PageBatch_body_length_must_equal_what_the_descriptors_imply()
    {
        // Two Full descriptors but room for only one payload.
        byte[] body = Concat(BatchPrefix(3, 2), Descriptor(1, 1), Descriptor(2, 1), new byte[PageSize]);
        var e = await ReadBatchFails(Frame(FrameType.PageBatch, body), TwoSlotLayout());
        Assert.Equal(ProtocolError.BodyLengthMismatch, e.Error);
        Assert.Contains("2 descriptors with 2 Full pages of 4096 bytes imply 8256", e.Message);
    }

    [Fact]
    public async Task PageBatch_too_short_for_its_descriptor_count_is_refused_before_reading_descriptors()
    {
        byte[] body = Concat(BatchPrefix(3, 100), Descriptor(1, 2));
        var e = await ReadBatchFails(Frame(FrameType.PageBatch, body), TwoSlotLayout());
        Assert.Equal(ProtocolError.BodyLengthMismatch, e.Error);
    }

    [Fact]
    public async Task Fixed_size_frame_with_wrong_length_is_refused_at_the_header()
    {
        var e = await ReadFails(ReaderOver(Frame(FrameType.RoundEnd, new byte[40])), (_, _) => Task.CompletedTask);
        Assert.Equal(ProtocolError.BodyLengthMismatch, e.Error);
        Assert.Equal("RoundEnd frame declares a 40-byte body, it must be exactly 48 bytes", e.Message);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(21u)] // the first type after 1.3's StreamMark (20)
    [InlineData(0xFFFFFFFFu)]
    public async Task Unknown_frame_type_is_refused(uint type)
    {
        var e = await ReadFails(ReaderOver(Frame((FrameType)type, [])), (_, _) => Task.CompletedTask);
        Assert.Equal(ProtocolError.UnknownFrameType, e.Error);
        Assert.Equal(type, e.Value);
    }

    [Fact]
    public async Task Nonzero_header_flags_are_refused()
    {
        var e = await ReadFails(ReaderOver(Frame(FrameType.Ping, new byte[8], flags: 4)), (_, _) => Task.CompletedTask);
        Assert.Equal(ProtocolError.UnknownFlags, e.Error);
    }

    [Fact]
    public async Task Unknown_page_kind_is_refused()
    {
        var e = await ReadBatchFails(Frame(FrameType.PageBatch, Concat(BatchPrefix(1, 1), Descriptor(1, 7))), TwoSlotLayout());
        Assert.Equal(ProtocolError.UnknownPageKind, e.Error);
        e = await ReadBatchFails(Frame(FrameType.PageBatch, Concat(BatchPrefix(1, 1), Descriptor(1, 0))), TwoSlotLayout());
        Assert.Equal(ProtocolError.UnknownPageKind, e.Error);
    }

    [Fact]
    public async Task Page_kind_not_negotiated_is_refused()
    {
        var e = await ReadBatchFails(Frame(FrameType.PageBatch, Concat(BatchPrefix(1, 1), Descriptor(1, 2))), TwoSlotLayout(), HelloOptions.UnchangedPages);
        Assert.Equal(ProtocolError.UnknownPageKind, e.Error);
        Assert.Contains("not negotiated", e.Message);
    }

    [Fact]
    public async Task Reserved_descriptor_and_batch_fields_must_be_zero()
    {
        var e = await ReadBatchFails(Frame(FrameType.PageBatch, Concat(BatchPrefix(1, 1), Descriptor(1, 2, reserved: 1))), TwoSlotLayout());
        Assert.Equal(ProtocolError.UnknownFlags, e.Error);
        e = await ReadBatchFails(Frame(FrameType.PageBatch, Concat(BatchPrefix(1, 1, reserved: 8), Descriptor(1, 2))), TwoSlotLayout());
        Assert.Equal(ProtocolError.UnknownFlags, e.Error);
    }

    [Fact]
    public async Task Oversized_frame_is_refused_from_the_header_alone_before_any_body_read()
    {
        // Only the header is in the stream: had the reader tried to read or allocate the body it would report Truncated.
        byte[] header = Frame(FrameType.Abort, [], declaredLength: 1UL << 30);
        var e = await ReadFails(ReaderOver(header), (_, _) => Task.CompletedTask);
        Assert.Equal(ProtocolError.FrameTooLarge, e.Error);
        Assert.Equal(1UL << 30, e.Value);

        byte[] state = Frame(FrameType.FinalState, [], declaredLength: (ulong)FinalState.FixedLength + WireLimits.MaxDeviceStateBytes + 1);
        Assert.Equal(ProtocolError.FrameTooLarge, (await ReadFails(ReaderOver(state), (_, _) => Task.CompletedTask)).Error);

        byte[] batch = Frame(FrameType.PageBatch, [], declaredLength: ulong.MaxValue);
        Assert.Equal(ProtocolError.FrameTooLarge, (await ReadFails(ReaderOver(batch, TwoSlotLayout()), (_, _) => Task.CompletedTask)).Error);
    }

    [Fact]
    public async Task PageBatch_with_more_descriptors_than_the_cap_is_refused()
    {
        byte[] bytes = Frame(FrameType.PageBatch, BatchPrefix(1, WireLimits.MaxPagesPerBatch + 1), declaredLength: 16 + (ulong)(WireLimits.MaxPagesPerBatch + 1) * 24);
        var e = await ReadBatchFails(bytes, TwoSlotLayout());
        Assert.Equal(ProtocolError.TooManyPages, e.Error);
    }

    [Fact]
    public async Task PageBatch_before_the_handshake_is_refused()
    {
        byte[] bytes = Frame(FrameType.PageBatch, Concat(BatchPrefix(1, 1), Descriptor(1, 2)));
        var e = await ReadFails(ReaderOver(bytes), (_, _) => Task.CompletedTask);
        Assert.Equal(ProtocolError.UnexpectedFrame, e.Error);
    }

    [Fact]
    public void FinalState_state_length_must_match_the_body()
    {
        byte[] body = Encode(new FinalState(1, 2, new byte[32], new byte[10]));
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(48), 11);
        Assert.Equal(ProtocolError.BodyLengthMismatch, Assert.Throws<ProtocolException>(() => FinalState.Read(body)).Error);
    }

    [Fact]
    public void Abort_with_invalid_reason_or_utf8_is_refused()
    {
        byte[] body = Encode(new Abort(AbortReason.Cancelled, "ab"));
        BinaryPrimitives.WriteUInt32LittleEndian(body, 0);
        Assert.Equal(ProtocolError.InvalidEnumValue, Assert.Throws<ProtocolException>(() => Abort.Read(body)).Error);
        BinaryPrimitives.WriteUInt32LittleEndian(body, 99);
        Assert.Equal(ProtocolError.InvalidEnumValue, Assert.Throws<ProtocolException>(() => Abort.Read(body)).Error);

        body = Encode(new Abort(AbortReason.Cancelled, "ab"));
        body[8] = 0xC3; body[9] = 0x28; // invalid 2-byte sequence
        Assert.Equal(ProtocolError.InvalidUtf8, Assert.Throws<ProtocolException>(() => Abort.Read(body)).Error);
    }

    [Fact]
    public async Task Unexpected_frame_type_where_another_is_required_is_refused()
    {
        var e = await Assert.ThrowsAsync<ProtocolException>(async () =>
            await ReaderOver(Frame(FrameType.Ping, new byte[8])).ReadExpectedAsync<Ack>(Ct));
        Assert.Equal(ProtocolError.UnexpectedFrame, e.Error);
        Assert.Equal("expected frame Ack, the peer sent Ping", e.Message);
    }

    [Fact]
    public async Task Abort_received_where_another_frame_was_expected_surfaces_the_peer_reason()
    {
        byte[] bytes = Frame(FrameType.Abort, Encode(new Abort(AbortReason.DigestMismatch, "digest differs")));
        var e = await Assert.ThrowsAsync<ProtocolException>(async () => await ReaderOver(bytes).ReadExpectedAsync<Resumed>(Ct));
        Assert.Equal(ProtocolError.PeerAborted, e.Error);
        Assert.Equal(AbortReason.DigestMismatch, e.AbortReason);
        Assert.Contains("digest differs", e.Message);
    }
}
