namespace KvmPresync.Wire;

/// <summary>
/// Receiver → sender once every page of a round is applied. Body (40 bytes):
/// <code>
///  0  u64 round id
///  8  u64 bytes applied          (frame bytes of this round the receiver consumed)
/// 16  u64 pages applied
/// 24  u64 sender timestamp echo (from RoundEnd: sender computes RTT = now − echo)
/// 32  u64 receiver timestamp     (ns, receiver's monotonic clock)
/// </code>
/// </summary>
public readonly record struct Ack(
    ulong RoundId, ulong BytesApplied, ulong PagesApplied, ulong SenderTimestampEchoNs, ulong ReceiverTimestampNs)
    : IFrameBody<Ack>
{
    public const int Length = 40;

    public static FrameType Type => FrameType.Ack;

    public int BodyLength => Length;

    public void Write(Span<byte> body)
    {
        var w = new BodyWriter(body[..Length]);
        w.U64(RoundId);
        w.U64(BytesApplied);
        w.U64(PagesApplied);
        w.U64(SenderTimestampEchoNs);
        w.U64(ReceiverTimestampNs);
    }

    public static Ack Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "Ack");
        var v = new Ack(r.U64("roundId"), r.U64("bytesApplied"), r.U64("pagesApplied"), r.U64("senderTimestampEchoNs"),
            r.U64("receiverTimestampNs"));
        r.End();
        return v;
    }
}
