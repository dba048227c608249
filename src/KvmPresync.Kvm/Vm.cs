using KvmPresync.Kvm.Interop;
using KvmPresync.Memory;

namespace KvmPresync.Kvm;

/// <summary>
/// A KVM virtual machine: its memory slots, dirty log, in-kernel devices and vCPUs. Only
/// <see cref="KvmSystem.CreateVm"/> creates one. Dispose after every vCPU thread has stopped.
/// </summary>
public sealed partial class Vm : IDisposable
{
    private const ulong TssAddress = 0xfffb_d000;
    private const ulong IdentityMapAddress = 0xfffb_c000;

    private readonly VmHandle _handle;
    private readonly List<MemorySlot> _slots = [];
    private readonly List<Vcpu> _vcpus = [];

    private Vm(KvmSystem system, VmHandle handle, VmOptions options)
    {
        System = system;
        _handle = handle;
        Options = options;
    }

    public KvmSystem System { get; }

    public VmOptions Options { get; }

    internal VmHandle Handle => _handle;

    public IReadOnlyList<MemorySlot> Slots => _slots;

    public IReadOnlyList<Vcpu> Vcpus => _vcpus;

    internal static Vm Create(KvmSystem system, VmOptions options)
    {
        if (options.InKernelPit && !options.InKernelIrqchip)
            throw new ArgumentException("the in-kernel PIT needs the in-kernel irqchip", nameof(options));
        var handle = new VmHandle(KvmException.Check(KvmNative.VmCreate(system.Handle.Fd), "KVM_CREATE_VM",
            "Check the kernel log (dmesg) and that no other hypervisor holds the CPU's virtualization"));
        var vm = new Vm(system, handle, options);
        try
        {
            int fd = handle.Fd;
            // The TSS and identity-map pages matter only to VMX; other KVM back ends may refuse them.
            if (system.CheckExtension(KvmCap.SetTssAddr) > 0)
            {
                KvmNative.VmSetTssAddr(fd, TssAddress);
                KvmNative.VmSetIdentityMapAddr(fd, IdentityMapAddress);
            }
            if (options.ManualDirtyLogClear)
                KvmException.Check(KvmNative.VmEnableCap(fd, (uint)KvmCap.ManualDirtyLogProtect2, KvmConstants.DirtyLogManualProtectEnable),
                    "KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)");
            if (options.InKernelIrqchip)
                KvmException.Check(KvmNative.VmCreateIrqchip(fd), "KVM_CREATE_IRQCHIP");
            if (options.InKernelPit)
                KvmException.Check(KvmNative.VmCreatePit2(fd, 0), "KVM_CREATE_PIT2");
            return vm;
        }
        catch
        {
            vm.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Registers <paramref name="memory"/> at guest-physical <paramref name="guestPhysicalAddress"/> as slot
    /// <paramref name="slotId"/>. The range must be page-aligned and overlap no other slot.
    /// </summary>
    public MemorySlot AddMemorySlot(uint slotId, ulong guestPhysicalAddress, GuestMemory memory, bool logDirty = true)
    {
        ArgumentNullException.ThrowIfNull(memory);
        int pageSize = memory.PageSize;
        if (guestPhysicalAddress % (ulong)pageSize != 0)
            throw new ArgumentException($"memory slot {slotId}: guest physical address 0x{guestPhysicalAddress:x} is not aligned to the page size ({pageSize} bytes)", nameof(guestPhysicalAddress));
        if (memory.Size % pageSize != 0)
            throw new ArgumentException($"memory slot {slotId}: size {memory.Size} is not a multiple of the page size ({pageSize} bytes)", nameof(memory));
        foreach (MemorySlot s in _slots)
        {
            if (s.Id == slotId)
                throw new ArgumentException($"memory slot {slotId} already exists ({s})", nameof(slotId));
            if (s.Overlaps(guestPhysicalAddress, memory.Size))
                throw new ArgumentException($"memory slot {slotId} [0x{guestPhysicalAddress:x}, 0x{guestPhysicalAddress + (ulong)memory.Size:x}) overlaps {s}", nameof(guestPhysicalAddress));
        }
        KvmException.Check(KvmNative.VmSetUserMemoryRegion(_handle.Fd, slotId, logDirty ? KvmConstants.MemLogDirtyPages : 0,
            guestPhysicalAddress, (ulong)memory.Size, (ulong)memory.Address), $"KVM_SET_USER_MEMORY_REGION(slot {slotId})");
        var slot = new MemorySlot(slotId, guestPhysicalAddress, memory, logDirty);
        _slots.Add(slot);
        return slot;
    }

    /// <summary>The slot holding guest-physical address <paramref name="gpa"/>, or null.</summary>
    public MemorySlot? SlotAt(ulong gpa)
    {
        foreach (MemorySlot s in _slots)
            if (s.Contains(gpa)) return s;
        return null;
    }

    /// <summary>Creates vCPU <paramref name="id"/> with KVM's supported CPUID.</summary>
    public Vcpu CreateVcpu(uint id)
    {
        var vcpu = Vcpu.Create(this, id);
        _vcpus.Add(vcpu);
        return vcpu;
    }

    public void Dispose()
    {
        foreach (Vcpu v in _vcpus) v.Dispose();
        _vcpus.Clear();
        _handle.Dispose();
    }
}
