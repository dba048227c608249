namespace KvmPresync.Wire;

/// <summary>
/// Sender → receiver after the last PageBatch of a sync round. Body (48 bytes):
/// <code>
///  0  u64 round id
///  8  u64 dirty pages       (harvested this round)
/// 16  u64 sent pages        (described in this round's batches)
/// 24  u64 held-back pages   (dirty but deferred by the predictor)
/// 32  u64 window bytes      (the sync window this round was allowed)
/// 40  u64 sender timestamp  (ns, sender's monotonic clock; echoed in Ack for RTT)
/// </code>
/// </summary>
public readonly record struct RoundEnd(
    ulong RoundId, ulong DirtyPages, ulong SentPages, ulong HeldBackPages, ulong WindowBytes, ulong SenderTimestampNs)
    : IFrameBody<RoundEnd>
{
    public const int Length = 48;

    public static FrameType Type => FrameType.RoundEnd;

    public int BodyLength => Length;

    public void Write(Span<byte> body)
    {
        var w = new BodyWriter(body[..Length]);
        w.U64(RoundId);
        w.U64(DirtyPages);
        w.U64(SentPages);
        w.U64(HeldBackPages);
        w.U64(WindowBytes);
        w.U64(SenderTimestampNs);
    }

    public static RoundEnd Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "RoundEnd");
        var v = new RoundEnd(r.U64("roundId"), r.U64("dirtyPages"), r.U64("sentPages"), r.U64("heldBackPages"),
            r.U64("windowBytes"), r.U64("senderTimestampNs"));
        r.End();
        return v;
    }
}
