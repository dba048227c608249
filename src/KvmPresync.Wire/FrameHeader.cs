using System.Buffers.Binary;

namespace KvmPresync.Wire;

/// <summary>
/// The fixed 16-byte frame header, little-endian:
/// <code>
/// offset 0  u32 type       (FrameType, 0 = Invalid)
/// offset 4  u32 flags      (reserved, must be 0 in version 1)
/// offset 8  u64 bodyLength (bytes after the header)
/// </code>
/// <see cref="TryRead"/> only parses; <see cref="Validate"/> checks type, flags and the per-type length cap
/// before a single body byte is read or allocated.
/// </summary>
public readonly record struct FrameHeader(FrameType Type, uint Flags, ulong BodyLength)
{
    public const int Size = 16;

    /// <summary>Parses a header from the first 16 bytes; false when fewer are given. Does not validate.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out FrameHeader header)
    {
        if (source.Length < Size)
        {
            header = default;
            return false;
        }
        header = new FrameHeader(
            (FrameType)BinaryPrimitives.ReadUInt32LittleEndian(source),
            BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
            BinaryPrimitives.ReadUInt64LittleEndian(source[8..]));
        return true;
    }

    /// <summary>Writes the 16 header bytes.</summary>
    public void Write(Span<byte> destination)
    {
        if (destination.Length < Size)
            throw new ArgumentException($"a frame header needs {Size} bytes, the destination has {destination.Length}", nameof(destination));
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)Type);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], BodyLength);
    }

    /// <summary>
    /// Rejects unknown types, non-zero flags and lengths outside the type's bounds.
    /// <paramref name="pageSize"/> is the negotiated page size, or 0 before the handshake (PageBatch then rejected).
    /// </summary>
    public void Validate(int pageSize)
    {
        if (Type == FrameType.Invalid || !Enum.IsDefined(Type))
            throw new ProtocolException(ProtocolError.UnknownFrameType, "FrameHeader.type", (uint)Type,
                $"frame header: unknown frame type {(uint)Type} (this side speaks protocol {ProtocolVersion.Current}, types 1..{(uint)FrameType.StreamMark})");
        if (Flags != 0)
            throw new ProtocolException(ProtocolError.UnknownFlags, "FrameHeader.flags", Flags,
                $"{Type} frame header: flags 0x{Flags:x8} set, version {ProtocolVersion.Current.Major} defines none");
        if (Type == FrameType.PageBatch && pageSize == 0)
            throw new ProtocolException(ProtocolError.UnexpectedFrame, "FrameHeader.type", (uint)Type,
                "PageBatch frame before the handshake negotiated a page size and memory layout");
        ulong max = WireLimits.MaxBodyLength(Type, pageSize, out ulong min);
        if (BodyLength > max)
            throw new ProtocolException(ProtocolError.FrameTooLarge, "FrameHeader.bodyLength", BodyLength,
                $"{Type} frame declares a {BodyLength}-byte body, the limit for this type is {max} bytes");
        if (BodyLength < min)
            throw new ProtocolException(ProtocolError.BodyLengthMismatch, "FrameHeader.bodyLength", BodyLength,
                min == max
                    ? $"{Type} frame declares a {BodyLength}-byte body, it must be exactly {min} bytes"
                    : $"{Type} frame declares a {BodyLength}-byte body, it needs at least {min} bytes");
    }

    public override string ToString() => $"{Type} ({BodyLength} body bytes)";
}
