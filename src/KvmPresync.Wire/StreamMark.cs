namespace KvmPresync.Wire;

/// <summary>
/// Protocol 1.3 with <see cref="HelloOptions.MultiStream"/>: a barrier, sent on every stream after each send of a page set
/// (sequence 1, 2, 3 … per migration). On a data stream it says "everything before this on this stream is sent"; on the
/// main connection the receiver handles no later frame (RoundEnd, FinalState) until every data stream has delivered
/// its mark of at least this sequence. Body (8 bytes): <c>u64 sequence</c> (≥ 1).
/// </summary>
public readonly record struct StreamMark(ulong Sequence) : IFrameBody<StreamMark>
{
    public const int Length = 8;

    public static FrameType Type => FrameType.StreamMark;

    public int BodyLength => Length;

    public void Write(Span<byte> body) => new BodyWriter(body[..Length]).U64(Sequence);

    public static StreamMark Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "StreamMark");
        ulong sequence = r.U64("sequence");
        r.End();
        if (sequence == 0)
            throw new ProtocolException(ProtocolError.InvalidField, "StreamMark.sequence", sequence, "StreamMark: sequence 0 (marks count from 1)");
        return new StreamMark(sequence);
    }
}
