namespace KvmPresync.Wire;

/// <summary>
/// Sender → receiver after verifying HelloAck. Body (32 bytes): the sender proof =
/// HMAC-SHA256(psk, "KPSY v1 sender proof" ‖ transcript), see <see cref="HandshakeTranscript"/>.
/// </summary>
public sealed record AuthProof(ReadOnlyMemory<byte> SenderProof) : IFrameBody<AuthProof>
{
    public const int Length = WireLimits.MacBytes;

    public static FrameType Type => FrameType.AuthProof;

    public int BodyLength => Length;

    public void Write(Span<byte> body)
    {
        if (SenderProof.Length != Length) throw new ArgumentException($"the sender proof must be {Length} bytes, not {SenderProof.Length}");
        SenderProof.Span.CopyTo(body);
    }

    public static AuthProof Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "AuthProof");
        byte[] proof = r.Bytes(Length, "senderProof").ToArray();
        r.End();
        return new AuthProof(proof);
    }
}
