namespace KvmPresync.Wire;

/// <summary>
/// One announced memory slot: 24 bytes on the wire —
/// <c>u32 slotId, u32 reserved (0), u64 guestPhysicalAddress, u64 sizeBytes</c>.
/// </summary>
public readonly record struct LayoutSlot(uint SlotId, ulong GuestPhysicalAddress, ulong SizeBytes)
{
    public const int WireLength = 24;

    /// <summary>First GPA past the slot (saturating, so overflow is caught by validation rather than wrapping).</summary>
    public ulong EndAddress => ulong.MaxValue - GuestPhysicalAddress < SizeBytes ? ulong.MaxValue : GuestPhysicalAddress + SizeBytes;

    public override string ToString() => $"slot {SlotId} [0x{GuestPhysicalAddress:x}, +0x{SizeBytes:x})";
}
