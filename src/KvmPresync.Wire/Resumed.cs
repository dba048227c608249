namespace KvmPresync.Wire;

/// <summary>
/// Receiver → sender: the digest matched and the destination vCPUs run; the source may stop. Body (16 bytes):
/// <c>u64 sender timestamp echo (from FinalState), u64 receiver timestamp (ns)</c>.
/// </summary>
public readonly record struct Resumed(ulong SenderTimestampEchoNs, ulong ReceiverTimestampNs) : IFrameBody<Resumed>
{
    public const int Length = 16;

    public static FrameType Type => FrameType.Resumed;

    public int BodyLength => Length;

    public void Write(Span<byte> body)
    {
        var w = new BodyWriter(body[..Length]);
        w.U64(SenderTimestampEchoNs);
        w.U64(ReceiverTimestampNs);
    }

    public static Resumed Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "Resumed");
        var v = new Resumed(r.U64("senderTimestampEchoNs"), r.U64("receiverTimestampNs"));
        r.End();
        return v;
    }
}
