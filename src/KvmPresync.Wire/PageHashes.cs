using System.Buffers.Binary;

namespace KvmPresync.Wire;

/// <summary>
/// Receiver → sender after SessionState(Resumed): the receiver's hash of every page it holds, in chunks. Body (16 + 8·count bytes):
/// <code>
///  0  u64 first index (linear page index over the announced slots, in order)
///  8  u32 count (1 … 65536)
/// 12  u32 reserved (0)
/// 16  count × u64 page hashes (the negotiated algorithm; an untouched page holds the zero page's hash)
/// </code>
/// Chunks follow each other without gaps from index 0 to the announced hash count (checked by the sender).
/// </summary>
public sealed record PageHashes(ulong FirstIndex, ReadOnlyMemory<ulong> Hashes) : IFrameBody<PageHashes>
{
    public const int FixedLength = 16;

    public static FrameType Type => FrameType.PageHashes;

    public int BodyLength => FixedLength + 8 * Hashes.Length;

    public void Write(Span<byte> body)
    {
        if (Hashes.Length is 0 or > WireLimits.MaxPageHashesPerFrame)
            throw new ArgumentException($"a PageHashes frame carries 1 … {WireLimits.MaxPageHashesPerFrame} hashes, not {Hashes.Length}");
        var w = new BodyWriter(body[..BodyLength]);
        w.U64(FirstIndex);
        w.U32((uint)Hashes.Length);
        w.U32(0);
        foreach (ulong h in Hashes.Span) w.U64(h);
    }

    public static PageHashes Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "PageHashes");
        ulong first = r.U64("firstIndex");
        uint count = r.U32("count");
        r.Reserved32("reserved");
        if (count == 0)
            throw new ProtocolException(ProtocolError.InvalidField, "PageHashes.count", count, "PageHashes: count is 0");
        if (count > WireLimits.MaxPageHashesPerFrame)
            throw new ProtocolException(ProtocolError.FrameTooLarge, "PageHashes.count", count,
                $"PageHashes: {count} hashes, the limit is {WireLimits.MaxPageHashesPerFrame}");
        long expected = FixedLength + 8L * count;
        if (body.Length != expected)
            throw new ProtocolException(ProtocolError.BodyLengthMismatch, "PageHashes.bodyLength", body.Length,
                $"PageHashes: body is {body.Length} bytes, {count} hashes imply {expected}");
        if (first > ulong.MaxValue - count)
            throw new ProtocolException(ProtocolError.InvalidField, "PageHashes.firstIndex", first, $"PageHashes: first index {first} + {count} overflows");
        var hashes = new ulong[count];
        ReadOnlySpan<byte> raw = r.Bytes(8 * (int)count, "hashes");
        for (int i = 0; i < hashes.Length; i++) hashes[i] = BinaryPrimitives.ReadUInt64LittleEndian(raw[(8 * i)..]);
        r.End();
        return new PageHashes(first, hashes);
    }
}
