namespace KvmPresync.Wire;

/// <summary>Answer to <see cref="Ping"/>. Body (8 bytes): <c>u64 timestamp echo (the Ping's value)</c>.</summary>
public readonly record struct Pong(ulong TimestampEchoNs) : IFrameBody<Pong>
{
    public const int Length = 8;

    public static FrameType Type => FrameType.Pong;

    public int BodyLength => Length;

    public void Write(Span<byte> body) => new BodyWriter(body[..Length]).U64(TimestampEchoNs);

    public static Pong Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "Pong");
        var v = new Pong(r.U64("timestampEchoNs"));
        r.End();
        return v;
    }
}
