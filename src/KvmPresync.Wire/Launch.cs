namespace KvmPresync.Wire;

/// <summary>
/// Sender → receiver: the switchover begins (the receiver moves from Syncing to Final). The source guest is still
/// running: final live rounds may follow (from round <see cref="RoundId"/>, while the delta shrinks), then the source
/// pauses its vCPUs, sends every pending page and FinalState. Body (24 bytes): <c>u64 round id, u64 pages pending (still to send, incl. held back),
/// u64 sender timestamp (ns)</c>.
/// </summary>
public readonly record struct Launch(ulong RoundId, ulong PagesPending, ulong SenderTimestampNs) : IFrameBody<Launch>
{
    public const int Length = 24;

    public static FrameType Type => FrameType.Launch;

    public int BodyLength => Length;

    public void Write(Span<byte> body)
    {
        var w = new BodyWriter(body[..Length]);
        w.U64(RoundId);
        w.U64(PagesPending);
        w.U64(SenderTimestampNs);
    }

    public static Launch Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "Launch");
        var v = new Launch(r.U64("roundId"), r.U64("pagesPending"), r.U64("senderTimestampNs"));
        r.End();
        return v;
    }
}
