namespace KvmPresync.Wire;

/// <summary>
/// Protocol 1.3 with <see cref="HelloOptions.MultiStream"/>, on the main connection: the sender asks for <see cref="Streams"/>
/// connections in all (this one included) before any memory frame; the receiver registers the session for joins and echoes
/// the frame unchanged (or answers Abort). Body (8 bytes):
/// <code>
/// 0  u32 streams       2 … 16 (WireLimits.MaxStreams), this connection included
/// 4  u32 stripe pages  power of two in [64, 65536]: linear page index i travels on stream (i / stripe) mod streams
/// </code>
/// </summary>
public readonly record struct StreamSetup(uint Streams, uint StripePages) : IFrameBody<StreamSetup>
{
    public const int Length = 8;

    public static FrameType Type => FrameType.StreamSetup;

    public int BodyLength => Length;

    public void Write(Span<byte> body)
    {
        var w = new BodyWriter(body[..Length]);
        w.U32(Streams);
        w.U32(StripePages);
    }

    public static StreamSetup Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "StreamSetup");
        uint streams = r.U32("streams");
        uint stripe = r.U32("stripePages");
        r.End();
        if (streams < 2 || streams > WireLimits.MaxStreams)
            throw new ProtocolException(ProtocolError.InvalidField, "StreamSetup.streams", streams,
                $"StreamSetup: {streams} streams; a migration uses 2 … {WireLimits.MaxStreams} (one needs no StreamSetup)");
        if (stripe < WireLimits.MinStripePages || stripe > WireLimits.MaxStripePages || (stripe & (stripe - 1)) != 0)
            throw new ProtocolException(ProtocolError.InvalidField, "StreamSetup.stripePages", stripe,
                $"StreamSetup: stripe of {stripe} pages; it must be a power of two in [{WireLimits.MinStripePages}, {WireLimits.MaxStripePages}]");
        return new StreamSetup(streams, stripe);
    }

    /// <summary>The stream linear page <paramref name="index"/> travels on: always the same one, so a newer copy of a page cannot overtake an older one.</summary>
    public static int StreamOf(long index, int streams, int stripePages) => (int)((ulong)index / (uint)stripePages % (uint)streams);
}
