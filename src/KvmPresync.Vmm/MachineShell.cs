using KvmPresync.Kvm;
using KvmPresync.Memory;

namespace KvmPresync.Vmm;

/// <summary>
/// A VM with its memory slot and vCPU created but no guest state yet: what <see cref="Machine.Restore(MachineShell, MachineSnapshot)"/>
/// fills in. Owns the VM (not the memory) until a machine is restored into it.
/// </summary>
public sealed class MachineShell : IDisposable
{
    private MachineShell(Vm vm, MemorySlot slot, Vcpu vcpu)
    {
        Vm = vm;
        Slot = slot;
        Vcpu = vcpu;
    }

    public Vm Vm { get; }

    public MemorySlot Slot { get; }

    public Vcpu Vcpu { get; }

    public GuestMemory Memory => Slot.Memory;

    /// <summary>Creates the VM, registers <paramref name="memory"/> at guest-physical 0 and creates vCPU 0.</summary>
    public static MachineShell Create(KvmSystem kvm, GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        ArgumentNullException.ThrowIfNull(memory);
        Vm vm = kvm.CreateVm();
        try
        {
            MemorySlot slot = vm.AddMemorySlot(0, 0, memory);
            return new MachineShell(vm, slot, vm.CreateVcpu(0));
        }
        catch
        {
            vm.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs the whole restore path once on this shell's own (empty) state — encode, decode, VM and vCPU state
    /// restore — so that code is compiled and loaded before a migration's downtime needs it. Harmless: the real
    /// restore overwrites every register and device.
    /// </summary>
    public void Warm()
    {
        var empty = new MachineSnapshot(new MachineConfig { MemorySize = Memory.Size }, Vcpu.SaveState(), Vm.SaveState(),
            new DeviceState(0, 0, 0, new Devices.GuestTelemetry().Save()));
        MachineSnapshot back = MachineSnapshotCodec.Decode(MachineSnapshotCodec.Encode(empty));
        Vm.RestoreState(back.Vm);
        Vcpu.RestoreState(back.Vcpu);
    }

    public void Dispose() => Vm.Dispose();
}
