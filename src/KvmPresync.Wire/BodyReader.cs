using System.Buffers.Binary;

namespace KvmPresync.Wire;

/// <summary>Reads little-endian fields from a frame body in order; running out of bytes is a length mismatch of <c>frame</c>.</summary>
internal ref struct BodyReader
{
    private readonly ReadOnlySpan<byte> _body;
    private readonly string _frame;
    private int _offset;

    public BodyReader(ReadOnlySpan<byte> body, string frame)
    {
        _body = body;
        _frame = frame;
        _offset = 0;
    }

    public readonly int Remaining => _body.Length - _offset;

    public ushort U16(string field) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, field));

    public uint U32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, field));

    public ulong U64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, field));

    public ReadOnlySpan<byte> Bytes(int count, string field) => Take(count, field);

    /// <summary>Reads a u32 that version 1 reserves; anything but 0 is rejected.</summary>
    public void Reserved32(string field)
    {
        uint value = U32(field);
        if (value != 0)
            throw new ProtocolException(ProtocolError.UnknownFlags, $"{_frame}.{field}", value,
                $"{_frame}: reserved field {field} is 0x{value:x8}, must be 0");
    }

    /// <summary>Reads a u32 enum; 0 (Invalid) and undefined values are rejected.</summary>
    public TEnum Enum32<TEnum>(string field, ProtocolError error) where TEnum : struct, Enum
    {
        uint raw = U32(field);
        TEnum value = System.Runtime.CompilerServices.Unsafe.BitCast<uint, TEnum>(raw);
        if (raw == 0 || !Enum.IsDefined(value))
            throw new ProtocolException(error, $"{_frame}.{field}", raw,
                $"{_frame}: {field} {raw} is not a known {typeof(TEnum).Name} (0 is reserved as Invalid)");
        return value;
    }

    /// <summary>Requires that every byte was consumed.</summary>
    public readonly void End()
    {
        if (_offset != _body.Length)
            throw new ProtocolException(ProtocolError.BodyLengthMismatch, $"{_frame}.bodyLength", _body.Length,
                $"{_frame}: body is {_body.Length} bytes, its fields account for {_offset}");
    }

    private ReadOnlySpan<byte> Take(int count, string field)
    {
        if (Remaining < count)
            throw new ProtocolException(ProtocolError.BodyLengthMismatch, $"{_frame}.{field}", _body.Length,
                $"{_frame}: body is {_body.Length} bytes, too short for field {field} at offset {_offset} ({count} bytes)");
        ReadOnlySpan<byte> s = _body.Slice(_offset, count);
        _offset += count;
        return s;
    }
}
