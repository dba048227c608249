namespace KvmPresync.Wire;

/// <summary>
/// Receiver → sender, answers SessionStart. Body (16 bytes):
/// <code>
///  0  u32 status (SessionStatus)
///  4  u32 reserved (0)
///  8  u64 hash count: Resumed → the layout's page count (> 0), the hashes follow in PageHashes frames in index order;
///         New, Unknown → 0
/// </code>
/// </summary>
public readonly record struct SessionState(SessionStatus Status, ulong HashCount) : IFrameBody<SessionState>
{
    public const int Length = 16;

    public static FrameType Type => FrameType.SessionState;

    public int BodyLength => Length;

    public void Write(Span<byte> body)
    {
        var w = new BodyWriter(body[..Length]);
        w.U32((uint)Status);
        w.U32(0);
        w.U64(HashCount);
    }

    public static SessionState Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "SessionState");
        var status = r.Enum32<SessionStatus>("status", ProtocolError.InvalidEnumValue);
        r.Reserved32("reserved");
        ulong count = r.U64("hashCount");
        r.End();
        if ((status == SessionStatus.Resumed) != (count > 0))
            throw new ProtocolException(ProtocolError.InvalidField, "SessionState.hashCount", count,
                $"SessionState: status {status} with hash count {count} (Resumed needs the page count, New and Unknown 0)");
        if (count > WireLimits.MaxTotalMemoryBytes / WireLimits.MinPageSize)
            throw new ProtocolException(ProtocolError.FrameTooLarge, "SessionState.hashCount", count,
                $"SessionState announces {count} page hashes, more pages than any layout may have");
        return new SessionState(status, count);
    }
}
