using KvmPresync.Memory;
using System.Buffers;

namespace KvmPresync.Memory;

/// <summary>
/// Exposes native memory (e.g. the guest's memfd mapping) as <see cref="Memory{T}"/> so it can be handed to
/// the wire's gather writers and payload reader without a copy.
/// Does not own the memory: whoever owns the mapping must keep it alive while this manager's memory is in use.
/// Covers at most 2 GiB (a <see cref="Memory{T}"/> limit); <see cref="GuestMemoryMap"/> hands out one per 1 GiB chunk.
/// </summary>
public sealed unsafe class UnmanagedMemoryManager : MemoryManager<byte>
{
    private readonly byte* _pointer;
    private readonly int _length;

    public UnmanagedMemoryManager(byte* pointer, int length)
    {
        if (pointer == null) throw new ArgumentNullException(nameof(pointer));
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _pointer = pointer;
        _length = length;
    }

    public UnmanagedMemoryManager(nint pointer, int length) : this((byte*)pointer, length) { }

    public int Length => _length;

    // Safe: the constructor's caller guarantees [pointer, pointer + length) is mapped for this object's lifetime.
    public override Span<byte> GetSpan() => new(_pointer, _length);

    /// <summary>Native memory does not move; pinning just returns the address.</summary>
    public override MemoryHandle Pin(int elementIndex = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(elementIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(elementIndex, _length);
        // Safe: elementIndex is within [0, length], so the pointer stays inside (or one past) the mapping.
        return new MemoryHandle(_pointer + elementIndex);
    }

    public override void Unpin() { }

    protected override void Dispose(bool disposing) { }
}
