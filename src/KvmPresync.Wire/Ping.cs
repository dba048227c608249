namespace KvmPresync.Wire;

/// <summary>Either side, optional liveness/RTT probe. Body (8 bytes): <c>u64 timestamp (ns, sender of the Ping)</c>.</summary>
public readonly record struct Ping(ulong TimestampNs) : IFrameBody<Ping>
{
    public const int Length = 8;

    public static FrameType Type => FrameType.Ping;

    public int BodyLength => Length;

    public void Write(Span<byte> body) => new BodyWriter(body[..Length]).U64(TimestampNs);

    public static Ping Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "Ping");
        var v = new Ping(r.U64("timestampNs"));
        r.End();
        return v;
    }
}
