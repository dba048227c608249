using KvmPresync.Wire;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Wire;

public sealed class FrameRoundTripTests
{
    private static async Task<T> RoundTrip<T>(T body) where T : IFrameBody<T>
    {
        var stream = new MemoryStream();
        var writer = new FrameWriter(stream);
        await writer.WriteAsync(body, Ct);
        Assert.Equal(FrameHeader.Size + body.BodyLength, stream.Length);
        Assert.Equal(stream.Length, writer.BytesWritten);

        var reader = ReaderOver(stream.ToArray());
        FrameHeader header = await reader.ReadHeaderAsync(Ct);
        Assert.Equal(T.Type, header.Type);
        Assert.Equal((ulong)body.BodyLength, header.BodyLength);
        T decoded = await reader.ReadBodyAsync<T>(header, Ct);
        Assert.Equal(stream.Length, reader.BytesRead);
        var end = await Assert.ThrowsAsync<ProtocolException>(async () => await reader.ReadHeaderAsync(Ct));
        Assert.Equal(ProtocolError.PeerClosed, end.Error);
        return decoded;
    }

    [Fact]
    public void Header_is_16_little_endian_bytes()
    {
        byte[] bytes = new byte[16];
        new FrameHeader(FrameType.Ack, 0, 0x0102030405060708).Write(bytes);
        Assert.Equal(new byte[] { 7, 0, 0, 0, 0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1 }, bytes);
        Assert.True(FrameHeader.TryRead(bytes, out FrameHeader h));
        Assert.Equal(new FrameHeader(FrameType.Ack, 0, 0x0102030405060708), h);
        Assert.False(FrameHeader.TryRead(bytes.AsSpan(0, 15), out _));
    }

    [Fact]
    public async Task Hello_round_trips_with_layout_and_nonce()
    {
        byte[] nonce = RandomKey(32);
        var hello = new Hello(new ProtocolVersion(1, 0), TwoSlotLayout(), PageHashAlgorithm.XxHash3, HelloOptions.ZeroPages, nonce);
        Hello back = await RoundTrip(hello);
        Assert.Equal(hello.Version, back.Version);
        Assert.Equal(hello.HashAlgorithm, back.HashAlgorithm);
        Assert.Equal(hello.Options, back.Options);
        Assert.Equal(nonce, back.SenderNonce.ToArray());
        Assert.Equal(hello.Layout.Slots, back.Layout.Slots);
        Assert.Equal(PageSize, back.Layout.PageSize);
        Assert.Equal("KPSY"u8.ToArray(), Encode(hello).AsSpan(0, 4).ToArray());
    }

    [Fact]
    public async Task HelloAck_round_trips()
    {
        var ack = new HelloAck(new ProtocolVersion(1, 0), HelloOptions.All, RandomKey(32), RandomKey(32));
        HelloAck back = await RoundTrip(ack);
        Assert.Equal(ack.AcceptedVersion, back.AcceptedVersion);
        Assert.Equal(ack.AcceptedOptions, back.AcceptedOptions);
        Assert.Equal(ack.ReceiverNonce.ToArray(), back.ReceiverNonce.ToArray());
        Assert.Equal(ack.ReceiverProof.ToArray(), back.ReceiverProof.ToArray());
    }

    [Fact]
    public async Task AuthProof_and_AuthOk_round_trip()
    {
        byte[] mac = RandomKey(32);
        Assert.Equal(mac, (await RoundTrip(new AuthProof(mac))).SenderProof.ToArray());
        Assert.Equal(default, await RoundTrip(default(AuthOk)));
    }

    [Fact]
    public async Task Small_fixed_frames_round_trip()
    {
        var roundEnd = new RoundEnd(7, 1000, 900, 100, 1 << 20, 123456789);
        Assert.Equal(roundEnd, await RoundTrip(roundEnd));
        var ack = new Ack(7, 3_000_000, 900, 123456789, 987654321);
        Assert.Equal(ack, await RoundTrip(ack));
        var launch = new Launch(8, 4242, 55555);
        Assert.Equal(launch, await RoundTrip(launch));
        var resumed = new Resumed(55555, 66666);
        Assert.Equal(resumed, await RoundTrip(resumed));
        Assert.Equal(new Ping(42), await RoundTrip(new Ping(42)));
        Assert.Equal(new Pong(42), await RoundTrip(new Pong(42)));
    }

    [Fact]
    public async Task FinalState_round_trips_with_state_blob_and_digest()
    {
        byte[] digest = RandomKey(32), state = RandomKey(5000);
        var final = new FinalState(65536, 777, digest, state);
        FinalState back = await RoundTrip(final);
        Assert.Equal(65536UL, back.PageCount);
        Assert.Equal(777UL, back.SenderTimestampNs);
        Assert.Equal(digest, back.MemoryDigest.ToArray());
        Assert.Equal(state, back.DeviceState.ToArray());
    }

    [Fact]
    public async Task Abort_round_trips_utf8_message_and_truncates_long_ones_at_a_character_boundary()
    {
        var abort = new Abort(AbortReason.DigestMismatch, "digest différent ✓");
        Assert.Equal(abort, await RoundTrip(abort));

        var longAbort = new Abort(AbortReason.ReceiverFailure, new string('é', 2000)); // 2 bytes each
        Abort back = await RoundTrip(longAbort);
        Assert.Equal(new string('é', WireLimits.MaxAbortMessageBytes / 2), back.Message);
    }

    [Fact]
    public async Task PageBatch_round_trips_descriptors_and_payloads_in_order()
    {
        MemoryLayout layout = TwoSlotLayout();
        var stream = new MemoryStream();
        var writer = new FrameWriter(stream);
        writer.UseSession(layout, HelloOptions.All);
        PageDescriptor[] descriptors =
        [
            new(3, PageKind.Full, 0x33), new(4, PageKind.Zero, 0x44), new(256, PageKind.Full, 0x100), new(271, PageKind.Unchanged, 0x10f),
        ];
        byte[] p3 = PatternPage(3), p256 = PatternPage(256);
        await writer.WritePageBatchAsync(9, descriptors, [p3, p256], Ct);
        Assert.Equal((long)(FrameHeader.Size + PageBatch.BodyLength(4, 2, PageSize)), stream.Length);

        var reader = ReaderOver(stream.ToArray(), layout);
        FrameHeader header = await reader.ReadHeaderAsync(Ct);
        PageBatch batch = await reader.ReadPageBatchAsync(header, Ct);
        Assert.Equal(9UL, batch.RoundId);
        Assert.Equal(descriptors, batch.Descriptors.ToArray());
        Assert.Equal(2, batch.FullPages);
        Assert.Equal(3UL, reader.NextPayloadDescriptor.PageNumber);
        byte[] a = new byte[PageSize], b = new byte[PageSize];
        reader.ReadPayload(a);
        Assert.Equal(256UL, reader.NextPayloadDescriptor.PageNumber);
        await reader.ReadPayloadAsync(b, Ct);
        Assert.Equal(p3, a);
        Assert.Equal(p256, b);
        Assert.Equal(0, reader.PayloadsRemaining);
        Assert.Equal(stream.Length, reader.BytesRead);
    }

    [Fact]
    public async Task Reading_the_next_header_before_consuming_payloads_is_a_caller_error()
    {
        MemoryLayout layout = TwoSlotLayout();
        var stream = new MemoryStream();
        var writer = new FrameWriter(stream);
        writer.UseSession(layout, HelloOptions.All);
        await writer.WritePageBatchAsync(1, new PageDescriptor[] { new(0, PageKind.Full, 0) }, [PatternPage(0)], Ct);
        var reader = ReaderOver(stream.ToArray(), layout);
        await reader.ReadPageBatchAsync(await reader.ReadHeaderAsync(Ct), Ct);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await reader.ReadHeaderAsync(Ct));
        await reader.SkipPayloadAsync(Ct);
        var end = await Assert.ThrowsAsync<ProtocolException>(async () => await reader.ReadHeaderAsync(Ct));
        Assert.Equal(ProtocolError.PeerClosed, end.Error);
    }
}
