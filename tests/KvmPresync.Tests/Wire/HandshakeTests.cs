using System.Net.Sockets;
using KvmPresync.Wire;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Wire;

/// <summary>Version negotiation and PSK mutual authentication over real loopback sockets.</summary>
public sealed class HandshakeTests
{
    private sealed record Connection(Socket Socket, FrameReader Reader, FrameWriter Writer, NetworkStream Stream) : IDisposable
    {
        public static Connection Over(Socket socket)
        {
            var stream = new NetworkStream(socket, ownsSocket: true);
            return new Connection(socket, new FrameReader(stream), new FrameWriter(stream), stream);
        }

        public void Dispose() => Stream.Dispose();
    }

    private static async Task<(Connection Sender, Connection Receiver)> ConnectAsync()
    {
        (Socket client, Socket server) = await LoopbackPairAsync();
        return (Connection.Over(client), Connection.Over(server));
    }

    private static SenderHandshakeOptions Offer(MemoryLayout? layout = null, HelloOptions options = HelloOptions.All) =>
        new(layout ?? TwoSlotLayout(), PageHashAlgorithm.XxHash3, options);

    [Fact]
    public async Task Full_handshake_over_loopback_agrees_and_binds_the_session_then_pages_flow()
    {
        (Connection s, Connection r) = await ConnectAsync();
        using (s)
        using (r)
        {
            byte[] keyBytes = RandomKey();
            using var senderKey = new PreSharedKey(keyBytes);
            using var receiverKey = new PreSharedKey(keyBytes);
            Task<HandshakeResult> receiver = Handshake.RunReceiverAsync(r.Reader, r.Writer,
                new ReceiverHandshakeOptions { SupportedOptions = HelloOptions.ZeroPages }, receiverKey, Ct);
            HandshakeResult sent = await Handshake.RunSenderAsync(s.Reader, s.Writer, Offer(), senderKey, Ct);
            HandshakeResult received = await receiver;

            Assert.Equal(ProtocolVersion.Current, sent.Version);
            Assert.Equal(sent.Version, received.Version);
            Assert.Equal(HelloOptions.ZeroPages, sent.Options);      // intersection of offered and supported
            Assert.Equal(HelloOptions.ZeroPages, received.Options);
            Assert.Equal(PageHashAlgorithm.XxHash3, received.HashAlgorithm);
            Assert.Equal(TwoSlotLayout().Slots, received.Layout.Slots);
            Assert.Same(received.Layout, r.Reader.Layout);
            Assert.Same(sent.Layout, s.Writer.Layout);

            byte[] page = PatternPage(5);
            await s.Writer.WritePageBatchAsync(1, new PageDescriptor[] { new(256, PageKind.Full, 0), new(3, PageKind.Zero, 0) }, [page], Ct);
            PageBatch batch = await r.Reader.ReadPageBatchAsync(await r.Reader.ReadHeaderAsync(Ct), Ct);
            Assert.Equal(2, batch.Descriptors.Length);
            byte[] got = new byte[PageSize];
            r.Reader.ReadPayload(got);
            Assert.Equal(page, got);
        }
    }

    [Fact]
    public async Task Minor_versions_negotiate_down_to_the_lower()
    {
        (Connection s, Connection r) = await ConnectAsync();
        using (s)
        using (r)
        {
            byte[] key = RandomKey();
            using var k1 = new PreSharedKey(key);
            using var k2 = new PreSharedKey(key);
            Task<HandshakeResult> receiver = Handshake.RunReceiverAsync(r.Reader, r.Writer, new ReceiverHandshakeOptions { Version = new(1, 3) }, k2, Ct);
            HandshakeResult result = await Handshake.RunSenderAsync(s.Reader, s.Writer, Offer() with { Version = new(1, 5) }, k1, Ct);
            Assert.Equal(new ProtocolVersion(1, 3), result.Version);
            Assert.Equal(new ProtocolVersion(1, 3), (await receiver).Version);
        }
    }

    [Theory]
    [InlineData(1, 3, 1, 3, true)]
    [InlineData(1, 2, 1, 3, false)] // a 1.2 sender never gets the tree digest
    [InlineData(1, 3, 1, 2, false)] // nor from a 1.2 receiver (which does not know the bit)
    public async Task TreeDigest_is_accepted_only_at_1_3(ushort sMajor, ushort sMinor, ushort rMajor, ushort rMinor, bool accepted)
    {
        (Connection s, Connection r) = await ConnectAsync();
        using (s)
        using (r)
        {
            byte[] key = RandomKey();
            using var k1 = new PreSharedKey(key);
            using var k2 = new PreSharedKey(key);
            var receiverVersion = new ProtocolVersion(rMajor, rMinor);
            Task<HandshakeResult> receiver = Handshake.RunReceiverAsync(r.Reader, r.Writer, new ReceiverHandshakeOptions
            {
                Version = receiverVersion,
                SupportedOptions = receiverVersion.Minor >= 3 ? HelloOptions.All : HelloOptions.All & ~HelloOptions.TreeDigest,
            }, k2, Ct);
            HelloOptions offer = HelloOptions.ZeroPages | (sMinor >= 3 ? HelloOptions.TreeDigest : HelloOptions.None);
            HandshakeResult result = await Handshake.RunSenderAsync(s.Reader, s.Writer, Offer(options: offer) with { Version = new(sMajor, sMinor) }, k1, Ct);
            Assert.Equal(accepted, (result.Options & HelloOptions.TreeDigest) != 0);
            Assert.Equal(result.Options, (await receiver).Options);
        }
    }

    [Fact]
    public async Task A_1_3_receiver_strips_TreeDigest_from_a_session_that_runs_at_1_2()
    {
        (Connection s, Connection r) = await ConnectAsync();
        using (s)
        using (r)
        {
            byte[] key = RandomKey();
            using var k1 = new PreSharedKey(key);
            using var k2 = new PreSharedKey(key);
            // A (misbehaving) 1.2 sender that sets the 1.3 bit anyway: the receiver accepts it only at minor >= 3.
            Task<HandshakeResult> receiver = Handshake.RunReceiverAsync(r.Reader, r.Writer, new ReceiverHandshakeOptions(), k2, Ct);
            HandshakeResult result = await Handshake.RunSenderAsync(s.Reader, s.Writer,
                Offer(options: HelloOptions.ZeroPages | HelloOptions.TreeDigest) with { Version = new(1, 2) }, k1, Ct);
            Assert.Equal(new ProtocolVersion(1, 2), result.Version);
            Assert.Equal(HelloOptions.ZeroPages, result.Options);
            Assert.Equal(HelloOptions.ZeroPages, (await receiver).Options);
        }
    }

    [Fact]
    public async Task Major_version_mismatch_is_answered_with_abort_on_both_sides()
    {
        (Connection s, Connection r) = await ConnectAsync();
        using (s)
        using (r)
        {
            byte[] key = RandomKey();
            using var k1 = new PreSharedKey(key);
            using var k2 = new PreSharedKey(key);
            Task<HandshakeResult> receiver = Handshake.RunReceiverAsync(r.Reader, r.Writer, new ReceiverHandshakeOptions(), k2, Ct);
            var senderError = await Assert.ThrowsAnyAsync<ProtocolException>(() => Handshake.RunSenderAsync(s.Reader, s.Writer, Offer() with { Version = new(2, 0) }, k1, Ct));
            var receiverError = await Assert.ThrowsAnyAsync<ProtocolException>(() => receiver);
            Assert.Equal(ProtocolError.VersionMismatch, receiverError.Error);
            Assert.Equal(ProtocolError.VersionMismatch, senderError.Error);
            Assert.Equal(AbortReason.VersionMismatch, senderError.AbortReason);
            Assert.False(senderError.IsRetryable);
        }
    }

    [Fact]
    public async Task Receiver_with_the_wrong_key_fails_the_sender_and_is_told()
    {
        (Connection s, Connection r) = await ConnectAsync();
        using (s)
        using (r)
        {
            using var senderKey = new PreSharedKey(RandomKey());
            using var receiverKey = new PreSharedKey(RandomKey());
            Task<HandshakeResult> receiver = Handshake.RunReceiverAsync(r.Reader, r.Writer, new ReceiverHandshakeOptions(), receiverKey, Ct);
            var senderError = await Assert.ThrowsAsync<AuthenticationFailedException>(() => Handshake.RunSenderAsync(s.Reader, s.Writer, Offer(), senderKey, Ct));
            Assert.Equal(ProtocolError.AuthenticationFailed, senderError.Error);
            Assert.Equal("HelloAck.receiverProof", senderError.Field);
            Assert.False(senderError.IsRetryable);
            // The sender's Abort reaches the receiver, which also reports an authentication failure.
            var receiverError = await Assert.ThrowsAsync<AuthenticationFailedException>(() => receiver);
            Assert.Equal(ProtocolError.AuthenticationFailed, receiverError.Error);
            Assert.Null(r.Reader.Layout); // no session: no page could ever be accepted
        }
    }

    [Fact]
    public async Task Sender_with_the_wrong_key_is_refused_by_the_receiver_before_any_page()
    {
        // Sender side forged by hand: a Hello, then a proof made with another key.
        (Connection s, Connection r) = await ConnectAsync();
        using (s)
        using (r)
        {
            using var receiverKey = new PreSharedKey(RandomKey());
            using var wrongKey = new PreSharedKey(RandomKey());
            Task<HandshakeResult> receiver = Handshake.RunReceiverAsync(r.Reader, r.Writer, new ReceiverHandshakeOptions(), receiverKey, Ct);

            var hello = new Hello(ProtocolVersion.Current, TwoSlotLayout(), PageHashAlgorithm.XxHash64, HelloOptions.None, RandomKey(32));
            await s.Writer.WriteAsync(hello, Ct);
            FrameHeader h = await s.Reader.ReadHeaderAsync(Ct);
            byte[] ackBody = await s.Reader.ReadRawBodyAsync(h, Ct);
            await s.Writer.WriteAsync(new AuthProof(HandshakeTranscript.SenderProof(wrongKey, Encode(hello), ackBody.AsMemory(0, HelloAck.TranscriptLength))), Ct);

            var e = await Assert.ThrowsAsync<AuthenticationFailedException>(() => receiver);
            Assert.Equal("AuthProof.senderProof", e.Field);
            var told = await Assert.ThrowsAsync<AuthenticationFailedException>(async () => await s.Reader.ReadExpectedAsync<AuthOk>(Ct));
            Assert.Equal(AbortReason.AuthenticationFailed, told.AbortReason);
        }
    }

    [Fact]
    public async Task Reflected_receiver_proof_is_refused_as_sender_proof()
    {
        // An attacker without the key echoes the receiver's own proof back as the sender proof.
        (Connection s, Connection r) = await ConnectAsync();
        using (s)
        using (r)
        {
            using var key = new PreSharedKey(RandomKey());
            Task<HandshakeResult> receiver = Handshake.RunReceiverAsync(r.Reader, r.Writer, new ReceiverHandshakeOptions(), key, Ct);
            await s.Writer.WriteAsync(new Hello(ProtocolVersion.Current, TwoSlotLayout(), PageHashAlgorithm.XxHash64, HelloOptions.None, RandomKey(32)), Ct);
            HelloAck ack = await s.Reader.ReadExpectedAsync<HelloAck>(Ct);
            await s.Writer.WriteAsync(new AuthProof(ack.ReceiverProof), Ct);
            var e = await Assert.ThrowsAsync<AuthenticationFailedException>(() => receiver);
            Assert.Equal(ProtocolError.AuthenticationFailed, e.Error);
        }
    }

    [Fact]
    public async Task Receiver_echoing_the_sender_nonce_is_refused_as_a_reflection()
    {
        (Connection s, Connection r) = await ConnectAsync();
        using (s)
        using (r)
        {
            using var key = new PreSharedKey(RandomKey());
            Task<HandshakeResult> sender = Handshake.RunSenderAsync(s.Reader, s.Writer, Offer(), key, Ct);
            Hello hello = await r.Reader.ReadExpectedAsync<Hello>(Ct);
            await r.Writer.WriteAsync(new HelloAck(ProtocolVersion.Current, HelloOptions.None, hello.SenderNonce, new byte[32]), Ct);
            var e = await Assert.ThrowsAsync<AuthenticationFailedException>(() => sender);
            Assert.Equal("HelloAck.receiverNonce", e.Field);
        }
    }

    [Fact]
    public async Task Replayed_sender_proof_from_an_earlier_session_is_refused()
    {
        byte[] keyBytes = RandomKey();
        using var key = new PreSharedKey(keyBytes);
        byte[] helloFrame, proofFrame;

        // Session 1: genuine, recorded by an eavesdropper.
        (Connection s1, Connection r1) = await ConnectAsync();
        using (s1)
        using (r1)
        {
            var recorder = new MemoryStream();
            var recordingWriter = new FrameWriter(new TeeStream(s1.Stream, recorder));
            Task<HandshakeResult> receiver = Handshake.RunReceiverAsync(r1.Reader, r1.Writer, new ReceiverHandshakeOptions(), key, Ct);
            await Handshake.RunSenderAsync(s1.Reader, recordingWriter, Offer(), key, Ct);
            await receiver;
            byte[] recorded = recorder.ToArray();
            int helloLength = FrameHeader.Size + Hello.FixedLength + 2 * LayoutSlot.WireLength;
            helloFrame = recorded[..helloLength];
            proofFrame = recorded[helloLength..(helloLength + FrameHeader.Size + AuthProof.Length)];
        }

        // Session 2: the eavesdropper replays both frames; the receiver's fresh nonce makes the old proof useless.
        (Connection s2, Connection r2) = await ConnectAsync();
        using (s2)
        using (r2)
        {
            Task<HandshakeResult> receiver = Handshake.RunReceiverAsync(r2.Reader, r2.Writer, new ReceiverHandshakeOptions(), key, Ct);
            await s2.Stream.WriteAsync(helloFrame, Ct);
            await s2.Reader.ReadExpectedAsync<HelloAck>(Ct);
            await s2.Stream.WriteAsync(proofFrame, Ct);
            var e = await Assert.ThrowsAsync<AuthenticationFailedException>(() => receiver);
            Assert.Equal("AuthProof.senderProof", e.Field);
        }
    }

    [Fact]
    public async Task Page_data_instead_of_the_proof_is_refused_and_never_read()
    {
        (Connection s, Connection r) = await ConnectAsync();
        using (s)
        using (r)
        {
            using var key = new PreSharedKey(RandomKey());
            Task<HandshakeResult> receiver = Handshake.RunReceiverAsync(r.Reader, r.Writer, new ReceiverHandshakeOptions(), key, Ct);
            await s.Writer.WriteAsync(new Hello(ProtocolVersion.Current, TwoSlotLayout(), PageHashAlgorithm.XxHash64, HelloOptions.None, RandomKey(32)), Ct);
            await s.Reader.ReadExpectedAsync<HelloAck>(Ct);
            await s.Stream.WriteAsync(Frame(FrameType.RoundEnd, new byte[RoundEnd.Length]), Ct);
            var e = await Assert.ThrowsAnyAsync<ProtocolException>(() => receiver);
            Assert.Equal(ProtocolError.UnexpectedFrame, e.Error);
            var told = await Assert.ThrowsAnyAsync<ProtocolException>(async () => await s.Reader.ReadExpectedAsync<AuthOk>(Ct));
            Assert.Equal(AbortReason.ProtocolViolation, told.AbortReason);
        }
    }

    [Fact]
    public async Task Receiver_refusing_the_layout_aborts_with_the_reason()
    {
        (Connection s, Connection r) = await ConnectAsync();
        using (s)
        using (r)
        {
            byte[] keyBytes = RandomKey();
            using var k1 = new PreSharedKey(keyBytes);
            using var k2 = new PreSharedKey(keyBytes);
            var options = new ReceiverHandshakeOptions { ValidateLayout = l => l.TotalPages == 1024 ? null : $"destination VM has 1024 pages, not {l.TotalPages}" };
            Task<HandshakeResult> receiver = Handshake.RunReceiverAsync(r.Reader, r.Writer, options, k2, Ct);
            var e = await Assert.ThrowsAnyAsync<ProtocolException>(() => Handshake.RunSenderAsync(s.Reader, s.Writer, Offer(), k1, Ct));
            Assert.Equal(AbortReason.LayoutRejected, e.AbortReason);
            Assert.Contains("destination VM has 1024 pages, not 80", e.Message);
            Assert.Equal(ProtocolError.LayoutRejected, (await Assert.ThrowsAnyAsync<ProtocolException>(() => receiver)).Error);
        }
    }

    [Fact]
    public void Proofs_differ_by_direction_and_by_transcript()
    {
        using var key = new PreSharedKey(RandomKey());
        byte[] hello = RandomKey(80), ack = RandomKey(40);
        byte[] r = HandshakeTranscript.ReceiverProof(key, hello, ack), s = HandshakeTranscript.SenderProof(key, hello, ack);
        Assert.NotEqual(r, s);
        ack[0] ^= 1;
        Assert.NotEqual(r, HandshakeTranscript.ReceiverProof(key, hello, ack));
    }

    /// <summary>Writes to two streams (the connection and a recorder).</summary>
    private sealed class TeeStream(Stream first, Stream second) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => first.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count)
        {
            second.Write(buffer, offset, count);
            first.Write(buffer, offset, count);
        }
    }
}
