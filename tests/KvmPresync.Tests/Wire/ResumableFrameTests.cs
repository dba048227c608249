using System.Buffers.Binary;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Wire;

/// <summary>Protocol 1.1's resume frames (SessionStart, SessionState, PageHashes): round trips, every invalid field refused, the gate's new phase, negotiation.</summary>
public sealed class ResumableFrameTests
{
    private static byte[] Bytes<T>(T body) where T : IFrameBody<T>
    {
        var b = new byte[body.BodyLength];
        body.Write(b);
        return b;
    }

    private static byte[] Id() => Enumerable.Range(1, 16).Select(i => (byte)i).ToArray();

    [Fact]
    public void SessionStart_round_trips()
    {
        byte[] proof = Enumerable.Repeat((byte)0xAB, 32).ToArray();
        SessionStart s = SessionStart.Read(Bytes(new SessionStart(Id(), 7, proof)));
        Assert.Equal(Id(), s.SessionId.ToArray());
        Assert.Equal(7u, s.Generation);
        Assert.Equal(proof, s.Proof.ToArray());
        Assert.Equal(56, SessionStart.Length);
        Assert.Equal("0102030405060708090a0b0c0d0e0f10", s.SessionIdHex);
    }

    [Fact]
    public void SessionStart_refuses_a_zero_id_a_reserved_field_and_a_wrong_length()
    {
        byte[] good = Bytes(new SessionStart(Id(), 1, new byte[32]));
        byte[] zero = (byte[])good.Clone();
        zero.AsSpan(0, 16).Clear();
        Assert.Equal(ProtocolError.InvalidField, Assert.Throws<ProtocolException>(() => SessionStart.Read(zero)).Error);
        byte[] reserved = (byte[])good.Clone();
        reserved[20] = 1;
        Assert.Equal(ProtocolError.UnknownFlags, Assert.Throws<ProtocolException>(() => SessionStart.Read(reserved)).Error);
        Assert.Equal(ProtocolError.BodyLengthMismatch, Assert.Throws<ProtocolException>(() => SessionStart.Read(good.AsSpan(0, 55))).Error);
        Assert.Equal(ProtocolError.BodyLengthMismatch, Assert.Throws<ProtocolException>(() => SessionStart.Read([.. good, 0])).Error);
    }

    [Fact]
    public void SessionState_round_trips_and_refuses_invalid_status_reserved_and_inconsistent_counts()
    {
        Assert.Equal(new SessionState(SessionStatus.Resumed, 65536), SessionState.Read(Bytes(new SessionState(SessionStatus.Resumed, 65536))));
        Assert.Equal(new SessionState(SessionStatus.New, 0), SessionState.Read(Bytes(new SessionState(SessionStatus.New, 0))));
        Assert.Equal(new SessionState(SessionStatus.Unknown, 0), SessionState.Read(Bytes(new SessionState(SessionStatus.Unknown, 0))));
        foreach (uint status in new uint[] { 0, 4, 0xFFFFFFFF })
        {
            byte[] b = Bytes(new SessionState(SessionStatus.New, 0));
            BinaryPrimitives.WriteUInt32LittleEndian(b, status);
            Assert.Equal(ProtocolError.InvalidEnumValue, Assert.Throws<ProtocolException>(() => SessionState.Read(b)).Error);
        }
        byte[] reserved = Bytes(new SessionState(SessionStatus.New, 0));
        reserved[4] = 1;
        Assert.Equal(ProtocolError.UnknownFlags, Assert.Throws<ProtocolException>(() => SessionState.Read(reserved)).Error);
        Assert.Equal(ProtocolError.InvalidField, Assert.Throws<ProtocolException>(() => SessionState.Read(Bytes(new SessionState(SessionStatus.Resumed, 0)))).Error);
        Assert.Equal(ProtocolError.InvalidField, Assert.Throws<ProtocolException>(() => SessionState.Read(Bytes(new SessionState(SessionStatus.New, 5)))).Error);
        Assert.Equal(ProtocolError.InvalidField, Assert.Throws<ProtocolException>(() => SessionState.Read(Bytes(new SessionState(SessionStatus.Unknown, 5)))).Error);
        Assert.Equal(ProtocolError.FrameTooLarge, Assert.Throws<ProtocolException>(() => SessionState.Read(Bytes(new SessionState(SessionStatus.Resumed, 1UL << 40)))).Error);
        Assert.Equal(ProtocolError.BodyLengthMismatch, Assert.Throws<ProtocolException>(() => SessionState.Read(Bytes(new SessionState(SessionStatus.New, 0)).AsSpan(0, 15))).Error);
    }

    [Fact]
    public void PageHashes_round_trips_and_refuses_zero_or_too_many_hashes_reserved_length_and_overflow()
    {
        ulong[] hashes = [1, 2, ulong.MaxValue];
        PageHashes p = PageHashes.Read(Bytes(new PageHashes(40, hashes)));
        Assert.Equal(40UL, p.FirstIndex);
        Assert.Equal(hashes, p.Hashes.ToArray());

        byte[] good = Bytes(new PageHashes(40, hashes));
        byte[] zero = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(zero.AsSpan(8), 0);
        Assert.Equal(ProtocolError.InvalidField, Assert.Throws<ProtocolException>(() => PageHashes.Read(zero.AsSpan(0, 16))).Error);
        byte[] many = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(many.AsSpan(8), WireLimits.MaxPageHashesPerFrame + 1);
        Assert.Equal(ProtocolError.FrameTooLarge, Assert.Throws<ProtocolException>(() => PageHashes.Read(many)).Error);
        byte[] reserved = (byte[])good.Clone();
        reserved[12] = 1;
        Assert.Equal(ProtocolError.UnknownFlags, Assert.Throws<ProtocolException>(() => PageHashes.Read(reserved)).Error);
        Assert.Equal(ProtocolError.BodyLengthMismatch, Assert.Throws<ProtocolException>(() => PageHashes.Read(good.AsSpan(0, good.Length - 8))).Error);
        Assert.Equal(ProtocolError.BodyLengthMismatch, Assert.Throws<ProtocolException>(() => PageHashes.Read([.. good, 0, 0, 0, 0, 0, 0, 0, 0])).Error);
        byte[] overflow = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(overflow, ulong.MaxValue - 1);
        Assert.Equal(ProtocolError.InvalidField, Assert.Throws<ProtocolException>(() => PageHashes.Read(overflow)).Error);
        Assert.Throws<ArgumentException>(() => Bytes(new PageHashes(0, new ulong[WireLimits.MaxPageHashesPerFrame + 1])));
    }

    [Fact]
    public void Headers_of_the_new_frames_are_bounded_before_any_body_is_read()
    {
        new FrameHeader(FrameType.SessionStart, 0, 56).Validate(0);
        new FrameHeader(FrameType.SessionState, 0, 16).Validate(0);
        new FrameHeader(FrameType.PageHashes, 0, 16 + 8UL * WireLimits.MaxPageHashesPerFrame).Validate(0);
        Assert.Equal(ProtocolError.BodyLengthMismatch, Assert.Throws<ProtocolException>(() => new FrameHeader(FrameType.SessionStart, 0, 55).Validate(0)).Error);
        Assert.Equal(ProtocolError.FrameTooLarge, Assert.Throws<ProtocolException>(() => new FrameHeader(FrameType.SessionState, 0, 17).Validate(0)).Error);
        Assert.Equal(ProtocolError.FrameTooLarge, Assert.Throws<ProtocolException>(() => new FrameHeader(FrameType.PageHashes, 0, 16 + 8UL * WireLimits.MaxPageHashesPerFrame + 8).Validate(0)).Error);
        Assert.Equal(ProtocolError.BodyLengthMismatch, Assert.Throws<ProtocolException>(() => new FrameHeader(FrameType.PageHashes, 0, 16).Validate(0)).Error);
        Assert.Equal(ProtocolError.UnknownFrameType, Assert.Throws<ProtocolException>(() => new FrameHeader((FrameType)((uint)FrameType.StreamMark + 1), 0, 0).Validate(0)).Error); // 17 is 1.2's DestinationReady, 18–20 1.3's stream frames
    }

    [Fact]
    public void The_gate_admits_SessionStart_only_when_required_right_after_AuthProof()
    {
        var plain = new ReceiverFrameGate();
        plain.Accept(FrameType.Hello);
        plain.Accept(FrameType.AuthProof);
        Assert.Equal(ProtocolError.UnexpectedFrame, Assert.Throws<ProtocolException>(() => plain.Accept(FrameType.SessionStart)).Error);

        var resumable = new ReceiverFrameGate();
        resumable.Accept(FrameType.Hello);
        resumable.Accept(FrameType.AuthProof);
        resumable.RequireSessionStart();
        Assert.Equal(ReceiverPhase.AwaitSessionStart, resumable.Phase);
        Assert.Equal(ProtocolError.UnexpectedFrame, Assert.Throws<ProtocolException>(() => resumable.Accept(FrameType.PageBatch)).Error);

        var ok = new ReceiverFrameGate();
        ok.Accept(FrameType.Hello);
        ok.Accept(FrameType.AuthProof);
        ok.RequireSessionStart();
        Assert.Equal(ReceiverPhase.Syncing, ok.Accept(FrameType.SessionStart));
        Assert.Equal(ProtocolError.UnexpectedFrame, Assert.Throws<ProtocolException>(() => ok.Accept(FrameType.SessionStart)).Error);
    }

    [Fact]
    public void The_session_proof_binds_id_generation_and_the_connection_nonces()
    {
        using var key = new PreSharedKey(Enumerable.Repeat((byte)3, 32).ToArray());
        byte[] nonces = Enumerable.Range(0, 64).Select(i => (byte)i).ToArray();
        byte[] other = (byte[])nonces.Clone();
        other[63] ^= 1;
        byte[] a = HandshakeTranscript.SessionProof(key, nonces, Id(), 1);
        Assert.Equal(a, HandshakeTranscript.SessionProof(key, nonces, Id(), 1));
        Assert.NotEqual(a, HandshakeTranscript.SessionProof(key, nonces, Id(), 2));
        Assert.NotEqual(a, HandshakeTranscript.SessionProof(key, other, Id(), 1));
        byte[] id2 = Id();
        id2[0] ^= 1;
        Assert.NotEqual(a, HandshakeTranscript.SessionProof(key, nonces, id2, 1));
    }

    [Fact]
    public async Task A_1_0_sender_or_receiver_never_gets_Resumable()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var key = new PreSharedKey(Enumerable.Repeat((byte)3, 32).ToArray());
        MemoryLayout layout = MemoryLayout.SingleSlot(4096, 1 << 20);
        foreach ((ProtocolVersion sender, ProtocolVersion receiver) in new[] { (new ProtocolVersion(1, 0), ProtocolVersion.Current), (ProtocolVersion.Current, new ProtocolVersion(1, 0)) })
        {
            var toReceiver = new System.IO.Pipelines.Pipe();
            var toSender = new System.IO.Pipelines.Pipe();
            var sReader = new FrameReader(toSender.Reader.AsStream());
            var sWriter = new FrameWriter(toReceiver.Writer.AsStream());
            var rReader = new FrameReader(toReceiver.Reader.AsStream());
            var rWriter = new FrameWriter(toSender.Writer.AsStream());
            Task<HandshakeResult> r = Handshake.RunReceiverAsync(rReader, rWriter, new ReceiverHandshakeOptions { Version = receiver }, key, ct);
            HandshakeResult s = await Handshake.RunSenderAsync(sReader, sWriter,
                new SenderHandshakeOptions(layout, PageHashAlgorithm.PageHasher, HelloOptions.ZeroPages | HelloOptions.Resumable) { Version = sender }, key, ct);
            Assert.Equal(0, s.Version.Minor);
            Assert.Equal(HelloOptions.ZeroPages, s.Options);
            Assert.Equal(HelloOptions.ZeroPages, (await r).Options);
            Assert.Equal(64, s.Nonces.Length);
            Assert.Equal(s.Nonces.ToArray(), (await r).Nonces.ToArray());
        }
    }
}
