namespace KvmPresync.Vmm;

/// <summary>One block of a guest's RAM as the VMM registers it with KVM: slot id, guest-physical start, size.</summary>
/// <param name="SlotId">The KVM memory slot id (also the migration wire's slot id).</param>
/// <param name="GuestPhysicalAddress">Where the slot starts in guest-physical space.</param>
/// <param name="SizeBytes">Bytes of RAM in the slot.</param>
public readonly record struct RamSlot(uint SlotId, ulong GuestPhysicalAddress, long SizeBytes)
{
    public override string ToString() => $"slot {SlotId} [0x{GuestPhysicalAddress:x}, 0x{GuestPhysicalAddress + (ulong)SizeBytes:x})";
}
