using System.Buffers.Binary;

namespace KvmPresync.Wire;

/// <summary>
/// The rules of a compressed PageBatch (protocol 1.3, <see cref="HelloOptions.CompressedPages"/>), checked field by field
/// in wire order by <see cref="FrameReader"/> before it reads or allocates anything the field sizes:
/// <code>
/// 12  u32 codec            0 None; 1 LZ4, 2 zstd only if negotiated             → else UnknownFlags
///     descriptors           at least one Full; Full pages × page size ≤ 4 MiB    → else InvalidField / FrameTooLarge
/// +0  u32 compressed length 1 … raw length − 1 (compression must pay)            → else InvalidField
/// +4  u32 raw length        = Full pages × page size                             → else InvalidField
/// +8  compressed payload    body = 16 + 24·count + 8 + compressed length         → else BodyLengthMismatch
///                           decompresses to exactly raw length bytes             → else InvalidField
/// </code>
/// </summary>
internal static class CompressedBatch
{
    /// <summary>The batch's codec field (body offset 12; reserved before 1.3).</summary>
    public static PageCodec ReadCodec(uint value, HelloOptions options)
    {
        if (value == 0) return PageCodec.None;
        if (!options.HasFlag(HelloOptions.CompressedPages))
            throw new ProtocolException(ProtocolError.UnknownFlags, "PageBatch.codec", value,
                $"PageBatch: codec field (reserved unless compression is negotiated) is 0x{value:x8}, must be 0: this session did not negotiate CompressedPages");
        if (value is not ((uint)PageCodec.Lz4 or (uint)PageCodec.Zstd))
            throw new ProtocolException(ProtocolError.UnknownFlags, "PageBatch.codec", value,
                $"PageBatch: codec {value} is not None (0), Lz4 (1) or Zstd (2)");
        return (PageCodec)value;
    }

    /// <summary>What the descriptors imply about a compressed batch, checked before its lengths are read.</summary>
    public static void CheckShape(ulong bodyLength, ulong roundId, int count, int full, int pageSize)
    {
        if (full == 0)
            throw new ProtocolException(ProtocolError.InvalidField, "PageBatch.codec", 0,
                $"PageBatch round {roundId}: compressed, but none of its {count} descriptors is Full (nothing to decompress)");
        long raw = (long)full * pageSize;
        if (raw > WireLimits.MaxCompressedBatchBytes)
            throw new ProtocolException(ProtocolError.FrameTooLarge, "PageBatch.codec", raw,
                $"PageBatch round {roundId}: {full} Full pages of {pageSize} bytes ({raw} bytes) exceed the {WireLimits.MaxCompressedBatchBytes} bytes a compressed batch may stand for");
        ulong minimum = PageBatch.CompressedBodyLength(count, 1);
        if (bodyLength < minimum)
            throw new ProtocolException(ProtocolError.BodyLengthMismatch, "FrameHeader.bodyLength", bodyLength,
                $"PageBatch round {roundId}: body is {bodyLength} bytes, too short for {count} descriptors, the compressed lengths and a payload ({minimum} bytes at least)");
    }

    /// <summary>Decodes and checks the compressed and raw lengths; returns them.</summary>
    public static (int Compressed, int Raw) ReadLengths(ReadOnlySpan<byte> fields, ulong bodyLength, ulong roundId, int count, int full,
        int pageSize, PageCodec codec)
    {
        uint compressed = BinaryPrimitives.ReadUInt32LittleEndian(fields);
        uint raw = BinaryPrimitives.ReadUInt32LittleEndian(fields[4..]);
        uint expectedRaw = (uint)(full * pageSize); // ≤ MaxCompressedBatchBytes (CheckShape)
        if (raw != expectedRaw)
            throw new ProtocolException(ProtocolError.InvalidField, "PageBatch.rawLength", raw,
                $"PageBatch round {roundId}: raw length is {raw} bytes, its {full} Full pages of {pageSize} bytes are {expectedRaw}");
        if (compressed == 0 || compressed >= raw)
            throw new ProtocolException(ProtocolError.InvalidField, "PageBatch.compressedLength", compressed,
                $"PageBatch round {roundId}: {codec} compressed length is {compressed} bytes, must be 1 … {raw - 1} (smaller than the {raw} raw bytes; an incompressible batch is sent raw)");
        ulong expectedBody = PageBatch.CompressedBodyLength(count, (int)compressed);
        if (bodyLength != expectedBody)
            throw new ProtocolException(ProtocolError.BodyLengthMismatch, "FrameHeader.bodyLength", bodyLength,
                $"PageBatch round {roundId}: body is {bodyLength} bytes, {count} descriptors and {compressed} compressed bytes imply {expectedBody}");
        return ((int)compressed, (int)raw);
    }

    /// <summary>Writes the two length fields that follow the descriptors.</summary>
    public static void WriteLengths(Span<byte> destination, int compressed, int raw)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)compressed);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], (uint)raw);
    }
}
