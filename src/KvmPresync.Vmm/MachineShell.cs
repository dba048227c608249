using KvmPresync.Kvm;
using KvmPresync.Memory;

namespace KvmPresync.Vmm;

/// <summary>
/// A VM with its memory slots and vCPU created but no guest state yet: what <see cref="Machine.Restore(MachineShell, MachineSnapshot)"/>
/// fills in. Owns the VM (not the memory) until a machine is restored into it.
/// </summary>
public sealed class MachineShell : IDisposable
{
    private MachineShell(Vm vm, GuestMemoryMap memory, IReadOnlyList<MemorySlot> slots, Vcpu vcpu)
    {
        Vm = vm;
        Memory = memory;
        Slots = slots;
        Vcpu = vcpu;
    }

    public Vm Vm { get; }

    /// <summary>One KVM slot per region of <see cref="Memory"/>, in its order.</summary>
    public IReadOnlyList<MemorySlot> Slots { get; }

    public Vcpu Vcpu { get; }

    public GuestMemoryMap Memory { get; }

    /// <summary>Creates the VM, registers each region of <paramref name="memory"/> as a KVM slot (its id and address) and creates vCPU 0.</summary>
    public static MachineShell Create(KvmSystem kvm, GuestMemoryMap memory)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        ArgumentNullException.ThrowIfNull(memory);
        Vm vm = kvm.CreateVm();
        try
        {
            var slots = new MemorySlot[memory.Regions.Count];
            for (int i = 0; i < slots.Length; i++)
            {
                GuestRegion r = memory.Regions[i];
                slots[i] = vm.AddMemorySlot(r.SlotId, r.GuestPhysicalAddress, r.Memory);
            }
            return new MachineShell(vm, memory, slots, vm.CreateVcpu(0));
        }
        catch
        {
            vm.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs the whole restore path once on this shell's own (empty) state — encode, decode, then the restore's own code
    /// (<see cref="Machine.Restore(MachineShell, MachineSnapshot)"/>: slot check, VM and vCPU state, device state, the machine
    /// object) — so that code is compiled and its types loaded before a migration's downtime needs it. Harmless: the real restore overwrites every register and device.
    /// </summary>
    public void Warm()
    {
        // A configuration whose slots are this shell's, so the slot check passes as it will at the switchover.
        long? lowTop = RamLayout.LowMemoryTopOf(Memory);
        var config = new MachineConfig { MemorySize = Memory.SizeBytes, LowMemoryTop = lowTop ?? RamLayout.DefaultLowMemoryTop };
        var empty = new MachineSnapshot(config, Vcpu.SaveState(), Vm.SaveState(), new DeviceState(0, 0, 0, new Devices.GuestTelemetry().Save()));
        MachineSnapshot back = MachineSnapshotCodec.Decode(MachineSnapshotCodec.Encode(empty));
        if (lowTop is not null)
        {
            // The whole of Machine.Restore: the state, and the machine object around it (its constructor's types loaded and
            // compiled too: 0.6 ms of the downtime otherwise). The throwaway machine is never started nor disposed (it would
            // dispose this shell's VM); nothing of it writes guest memory.
            _ = Machine.Restore(this, back);
            return;
        }
        // Memory no snapshot's slots can match (Restore will refuse it): warm what does not depend on them.
        Vm.RestoreState(back.Vm);
        Vcpu.RestoreState(back.Vcpu);
    }

    public void Dispose() => Vm.Dispose();
}
