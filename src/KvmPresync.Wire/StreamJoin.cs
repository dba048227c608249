namespace KvmPresync.Wire;

/// <summary>
/// Protocol 1.3 with <see cref="HelloOptions.MultiStream"/>: the first frame on a data connection, proving that its sender
/// holds the key of an authenticated session and naming the stream it carries. Answered with AuthOk (joined) or Abort.
/// Body (56 bytes):
/// <code>
///  0  16  join id = HMAC-SHA256(psk, "KPSY v1 stream session\0" ‖ Ns ‖ Nr)[0..16)   (the main connection's nonces)
/// 16  u32 stream index  1 … streams − 1 (0 is the main connection)
/// 20  u32 streams       as in the session's StreamSetup
/// 24  32  proof = HMAC-SHA256(psk, "KPSY v1 stream join\0" ‖ Ns ‖ Nr ‖ join id ‖ u32le index ‖ u32le streams)
/// </code>
/// </summary>
public sealed record StreamJoin(ReadOnlyMemory<byte> JoinId, uint Index, uint Streams, ReadOnlyMemory<byte> Proof) : IFrameBody<StreamJoin>
{
    public const int Length = 56;

    public static FrameType Type => FrameType.StreamJoin;

    public int BodyLength => Length;

    public void Write(Span<byte> body)
    {
        if (JoinId.Length != WireLimits.SessionIdBytes || Proof.Length != WireLimits.MacBytes)
            throw new ArgumentException($"StreamJoin needs a {WireLimits.SessionIdBytes}-byte join id and a {WireLimits.MacBytes}-byte proof");
        var w = new BodyWriter(body[..Length]);
        w.Bytes(JoinId.Span);
        w.U32(Index);
        w.U32(Streams);
        w.Bytes(Proof.Span);
    }

    public static StreamJoin Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "StreamJoin");
        byte[] id = r.Bytes(WireLimits.SessionIdBytes, "joinId").ToArray();
        uint index = r.U32("index");
        uint streams = r.U32("streams");
        byte[] proof = r.Bytes(WireLimits.MacBytes, "proof").ToArray();
        r.End();
        if (streams < 2 || streams > WireLimits.MaxStreams)
            throw new ProtocolException(ProtocolError.InvalidField, "StreamJoin.streams", streams,
                $"StreamJoin: {streams} streams; a migration uses 2 … {WireLimits.MaxStreams}");
        if (index < 1 || index >= streams)
            throw new ProtocolException(ProtocolError.InvalidField, "StreamJoin.index", index,
                $"StreamJoin: stream index {index} is not a data stream of {streams} (1 … {streams - 1}; 0 is the main connection)");
        return new StreamJoin(id, index, streams, proof);
    }
}
