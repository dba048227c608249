using KvmPresync.Wire;

namespace KvmPresync.Tests.Wire;

/// <summary>Protocol 1.3's stream frames (StreamSetup, StreamJoin, StreamMark): round trips, every invalid field refused, the proofs, the gate's data-stream phase.</summary>
public sealed class StreamFrameTests
{
    private static byte[] Bytes<T>(T body) where T : IFrameBody<T>
    {
        var b = new byte[body.BodyLength];
        body.Write(b);
        return b;
    }

    [Fact]
    public void StreamSetup_round_trips_and_refuses_a_count_or_stripe_out_of_range()
    {
        Assert.Equal(new StreamSetup(4, 256), StreamSetup.Read(Bytes(new StreamSetup(4, 256))));
        foreach ((uint streams, uint stripe) in new[] { (1u, 256u), (17u, 256u), (4u, 32u), (4u, 100u), (4u, 131072u) })
            Assert.Equal(ProtocolError.InvalidField, Assert.Throws<ProtocolException>(() => StreamSetup.Read(Bytes(new StreamSetup(streams, stripe)))).Error);
        Assert.Equal(ProtocolError.BodyLengthMismatch, Assert.Throws<ProtocolException>(() => StreamSetup.Read(new byte[7])).Error);
    }

    [Fact]
    public void StreamJoin_round_trips_and_refuses_the_main_index_an_index_beyond_the_count_and_too_many_streams()
    {
        byte[] id = Enumerable.Range(1, 16).Select(i => (byte)i).ToArray(), proof = Enumerable.Repeat((byte)0xCD, 32).ToArray();
        StreamJoin j = StreamJoin.Read(Bytes(new StreamJoin(id, 2, 3, proof)));
        Assert.Equal(id, j.JoinId.ToArray());
        Assert.Equal((2u, 3u), (j.Index, j.Streams));
        Assert.Equal(proof, j.Proof.ToArray());
        foreach ((uint index, uint streams) in new[] { (0u, 3u), (3u, 3u), (1u, 1u), (1u, 17u) })
            Assert.Equal(ProtocolError.InvalidField, Assert.Throws<ProtocolException>(() => StreamJoin.Read(Bytes(new StreamJoin(id, index, streams, proof)))).Error);
        Assert.Equal(ProtocolError.BodyLengthMismatch, Assert.Throws<ProtocolException>(() => StreamJoin.Read(new byte[55])).Error);
    }

    [Fact]
    public void StreamMark_round_trips_and_refuses_sequence_zero()
    {
        Assert.Equal(9UL, StreamMark.Read(Bytes(new StreamMark(9))).Sequence);
        Assert.Equal(ProtocolError.InvalidField, Assert.Throws<ProtocolException>(() => StreamMark.Read(new byte[8])).Error);
    }

    [Fact]
    public void The_join_proof_binds_key_nonces_id_index_and_count()
    {
        using var key = new PreSharedKey(Enumerable.Repeat((byte)7, 32).ToArray());
        using var other = new PreSharedKey(Enumerable.Repeat((byte)8, 32).ToArray());
        byte[] nonces = Enumerable.Range(0, 64).Select(i => (byte)i).ToArray(), nonces2 = nonces.Reverse().ToArray();
        byte[] id = HandshakeTranscript.StreamJoinId(key, nonces);
        Assert.Equal(16, id.Length);
        Assert.NotEqual(id, HandshakeTranscript.StreamJoinId(key, nonces2));
        Assert.NotEqual(id, HandshakeTranscript.StreamJoinId(other, nonces));
        byte[] proof = HandshakeTranscript.StreamJoinProof(key, nonces, id, 1, 3);
        Assert.Equal(proof, HandshakeTranscript.StreamJoinProof(key, nonces, id, 1, 3));
        Assert.NotEqual(proof, HandshakeTranscript.StreamJoinProof(other, nonces, id, 1, 3));
        Assert.NotEqual(proof, HandshakeTranscript.StreamJoinProof(key, nonces2, id, 1, 3));
        Assert.NotEqual(proof, HandshakeTranscript.StreamJoinProof(key, nonces, id, 2, 3));
        Assert.NotEqual(proof, HandshakeTranscript.StreamJoinProof(key, nonces, id, 1, 4));
    }

    [Fact]
    public void A_page_always_maps_to_one_stream_by_stripe()
    {
        Assert.Equal(0, StreamSetup.StreamOf(0, 3, 256));
        Assert.Equal(0, StreamSetup.StreamOf(255, 3, 256));
        Assert.Equal(1, StreamSetup.StreamOf(256, 3, 256));
        Assert.Equal(2, StreamSetup.StreamOf(767, 3, 256));
        Assert.Equal(0, StreamSetup.StreamOf(768, 3, 256));
    }

    [Fact]
    public void The_gate_takes_a_join_only_first_and_then_only_pages_and_marks()
    {
        var data = new ReceiverFrameGate();
        Assert.Equal(ReceiverPhase.DataStream, data.Accept(FrameType.StreamJoin));
        Assert.Equal(ReceiverPhase.DataStream, data.Accept(FrameType.PageBatch));
        Assert.Equal(ReceiverPhase.DataStream, data.Accept(FrameType.StreamMark));
        foreach (FrameType refused in new[] { FrameType.Hello, FrameType.RoundEnd, FrameType.Launch, FrameType.FinalState, FrameType.StreamJoin, FrameType.StreamSetup, FrameType.Ping })
            Assert.Equal(ProtocolError.UnexpectedFrame, Assert.Throws<ProtocolException>(() => data.Accept(refused)).Error);

        var main = new ReceiverFrameGate();
        main.Accept(FrameType.Hello);
        Assert.Equal(ProtocolError.UnexpectedFrame, Assert.Throws<ProtocolException>(() => main.Accept(FrameType.StreamSetup)).Error); // not before authentication
        main.Accept(FrameType.AuthProof);
        Assert.Equal(ReceiverPhase.Syncing, main.Accept(FrameType.StreamSetup));
        Assert.Equal(ReceiverPhase.Syncing, main.Accept(FrameType.StreamMark));
        main.Accept(FrameType.Launch);
        Assert.Equal(ReceiverPhase.Final, main.Accept(FrameType.StreamMark));
        Assert.Equal(ProtocolError.UnexpectedFrame, Assert.Throws<ProtocolException>(() => main.Accept(FrameType.StreamSetup)).Error);
        Assert.Equal(ProtocolError.UnexpectedFrame, Assert.Throws<ProtocolException>(() => main.Accept(FrameType.StreamJoin)).Error);
    }

    [Fact]
    public async Task A_1_2_peer_never_gets_MultiStream_and_a_1_3_pair_does()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var key = new PreSharedKey(Enumerable.Repeat((byte)3, 32).ToArray());
        MemoryLayout layout = MemoryLayout.SingleSlot(4096, 1 << 20);
        foreach ((ProtocolVersion sender, ProtocolVersion receiver, bool granted) in new[]
                 { (new ProtocolVersion(1, 2), ProtocolVersion.Current, false), (ProtocolVersion.Current, new ProtocolVersion(1, 2), false), (ProtocolVersion.Current, ProtocolVersion.Current, true) })
        {
            var toReceiver = new System.IO.Pipelines.Pipe();
            var toSender = new System.IO.Pipelines.Pipe();
            Task<HandshakeResult> r = Handshake.RunReceiverAsync(new FrameReader(toReceiver.Reader.AsStream()), new FrameWriter(toSender.Writer.AsStream()),
                new ReceiverHandshakeOptions { Version = receiver, SupportedOptions = HelloOptions.ZeroPages | HelloOptions.MultiStream }, key, ct);
            HandshakeResult s = await Handshake.RunSenderAsync(new FrameReader(toSender.Reader.AsStream()), new FrameWriter(toReceiver.Writer.AsStream()),
                new SenderHandshakeOptions(layout, PageHashAlgorithm.PageHasher, HelloOptions.ZeroPages | HelloOptions.MultiStream) { Version = sender }, key, ct);
            HelloOptions expected = HelloOptions.ZeroPages | (granted ? HelloOptions.MultiStream : HelloOptions.None);
            Assert.Equal(expected, s.Options);
            Assert.Equal(expected, (await r).Options);
        }
    }
}
