namespace KvmPresync.Wire;

/// <summary>
/// Sender → receiver, protocol 1.1 with <see cref="HelloOptions.Resumable"/>: the first frame after AuthOk. Body (56 bytes):
/// <code>
///  0  16  session id (random, chosen by the sender for the migration; not all zero)
/// 16  u32 generation (0 = a new session; n > 0 = the n-th reconnection, resumes generation n − 1)
/// 20  u32 reserved (0)
/// 24  32  proof = HMAC-SHA256(psk, "KPSY v1 session start\0" ‖ Ns ‖ Nr ‖ session id ‖ u32le generation), see <see cref="HandshakeTranscript.SessionProof"/>
/// </code>
/// </summary>
public sealed record SessionStart(ReadOnlyMemory<byte> SessionId, uint Generation, ReadOnlyMemory<byte> Proof) : IFrameBody<SessionStart>
{
    public const int Length = 56;

    public static FrameType Type => FrameType.SessionStart;

    public int BodyLength => Length;

    public void Write(Span<byte> body)
    {
        if (SessionId.Length != WireLimits.SessionIdBytes || Proof.Length != WireLimits.MacBytes)
            throw new ArgumentException($"SessionStart needs a {WireLimits.SessionIdBytes}-byte session id and a {WireLimits.MacBytes}-byte proof");
        var w = new BodyWriter(body[..Length]);
        w.Bytes(SessionId.Span);
        w.U32(Generation);
        w.U32(0);
        w.Bytes(Proof.Span);
    }

    public static SessionStart Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "SessionStart");
        ReadOnlySpan<byte> id = r.Bytes(WireLimits.SessionIdBytes, "sessionId");
        if (!id.ContainsAnyExcept((byte)0))
            throw new ProtocolException(ProtocolError.InvalidField, "SessionStart.sessionId", Convert.ToHexString(id),
                "SessionStart: the session id is all zero (it must be random)");
        byte[] sessionId = id.ToArray();
        uint generation = r.U32("generation");
        r.Reserved32("reserved");
        byte[] proof = r.Bytes(WireLimits.MacBytes, "proof").ToArray();
        r.End();
        return new SessionStart(sessionId, generation, proof);
    }

    /// <summary>The session id as lowercase hex (what the logs print).</summary>
    public string SessionIdHex => Convert.ToHexStringLower(SessionId.Span);
}
