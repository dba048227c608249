namespace KvmPresync.Wire;

/// <summary>
/// Receiver → sender, answers Hello. Body (72 bytes):
/// <code>
///  0  u16 accepted version major
///  2  u16 accepted version minor
///  4  u32 accepted options (a subset of those offered)
///  8  32  receiver nonce
/// 40  32  receiver proof = HMAC-SHA256(psk, "KPSY v1 receiver proof" ‖ transcript), see <see cref="HandshakeTranscript"/>
/// </code>
/// </summary>
public sealed record HelloAck(
    ProtocolVersion AcceptedVersion,
    HelloOptions AcceptedOptions,
    ReadOnlyMemory<byte> ReceiverNonce,
    ReadOnlyMemory<byte> ReceiverProof) : IFrameBody<HelloAck>
{
    public const int Length = 72;

    /// <summary>Bytes of the body covered by the transcript (everything before the proof).</summary>
    public const int TranscriptLength = 40;

    public static FrameType Type => FrameType.HelloAck;

    public int BodyLength => Length;

    public void Write(Span<byte> body)
    {
        if (ReceiverNonce.Length != WireLimits.NonceBytes || ReceiverProof.Length != WireLimits.MacBytes)
            throw new ArgumentException($"HelloAck needs a {WireLimits.NonceBytes}-byte nonce and a {WireLimits.MacBytes}-byte proof");
        var w = new BodyWriter(body[..Length]);
        w.U16(AcceptedVersion.Major);
        w.U16(AcceptedVersion.Minor);
        w.U32((uint)AcceptedOptions);
        w.Bytes(ReceiverNonce.Span);
        w.Bytes(ReceiverProof.Span);
    }

    public static HelloAck Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "HelloAck");
        var version = new ProtocolVersion(r.U16("versionMajor"), r.U16("versionMinor"));
        uint options = r.U32("acceptedOptions");
        if ((options & ~(uint)HelloOptions.All) != 0)
            throw new ProtocolException(ProtocolError.UnknownOption, "HelloAck.acceptedOptions", options,
                $"HelloAck: option bits 0x{options & ~(uint)HelloOptions.All:x} are not defined in protocol {ProtocolVersion.Current}");
        byte[] nonce = r.Bytes(WireLimits.NonceBytes, "receiverNonce").ToArray();
        byte[] proof = r.Bytes(WireLimits.MacBytes, "receiverProof").ToArray();
        r.End();
        return new HelloAck(version, (HelloOptions)options, nonce, proof);
    }
}
