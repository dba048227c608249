using KvmPresync.Memory;

namespace KvmPresync.Kvm;

/// <summary>A KVM memory slot: guest-physical range [<see cref="GuestPhysicalAddress"/>, +<see cref="Size"/>) backed by <see cref="Memory"/>.</summary>
public sealed class MemorySlot
{
    internal MemorySlot(uint id, ulong guestPhysicalAddress, GuestMemory memory, bool logDirty)
    {
        Id = id;
        GuestPhysicalAddress = guestPhysicalAddress;
        Memory = memory;
        LogDirty = logDirty;
    }

    public uint Id { get; }

    public ulong GuestPhysicalAddress { get; }

    public GuestMemory Memory { get; }

    public long Size => Memory.Size;

    public long PageCount => Memory.PageCount;

    public bool LogDirty { get; }

    /// <summary>Length of the slot's dirty bitmap in 64-bit words.</summary>
    public int BitmapWords => (int)((PageCount + 63) / 64);

    public bool Overlaps(ulong gpa, long size) =>
        gpa < GuestPhysicalAddress + (ulong)Size && GuestPhysicalAddress < gpa + (ulong)size;

    public bool Contains(ulong gpa) => gpa >= GuestPhysicalAddress && gpa < GuestPhysicalAddress + (ulong)Size;

    public override string ToString() => $"slot {Id} [0x{GuestPhysicalAddress:x}, 0x{GuestPhysicalAddress + (ulong)Size:x})";
}
