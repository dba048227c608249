using System.Buffers.Binary;

namespace KvmPresync.Wire;

/// <summary>Writes little-endian fields into a frame body in order.</summary>
internal ref struct BodyWriter
{
    private readonly Span<byte> _body;
    private int _offset;

    public BodyWriter(Span<byte> body)
    {
        _body = body;
        _offset = 0;
    }

    public readonly int Written => _offset;

    public void U16(ushort value) { BinaryPrimitives.WriteUInt16LittleEndian(_body[_offset..], value); _offset += 2; }

    public void U32(uint value) { BinaryPrimitives.WriteUInt32LittleEndian(_body[_offset..], value); _offset += 4; }

    public void U64(ulong value) { BinaryPrimitives.WriteUInt64LittleEndian(_body[_offset..], value); _offset += 8; }

    public void Bytes(ReadOnlySpan<byte> value) { value.CopyTo(_body[_offset..]); _offset += value.Length; }
}
