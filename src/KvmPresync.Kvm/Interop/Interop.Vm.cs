using System.Runtime.InteropServices;

namespace KvmPresync.Kvm.Interop;

// VM ioctls (native/shim/vm.c). Every function returns >= 0 or -errno.
internal static partial class KvmNative
{
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_create")]
    internal static partial int VmCreate(int kvmFd);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_enable_cap")]
    internal static partial int VmEnableCap(int vmFd, uint cap, ulong arg0);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_set_tss_addr")]
    internal static partial int VmSetTssAddr(int vmFd, ulong addr);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_set_identity_map_addr")]
    internal static partial int VmSetIdentityMapAddr(int vmFd, ulong addr);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_create_irqchip")]
    internal static partial int VmCreateIrqchip(int vmFd);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_create_pit2")]
    internal static partial int VmCreatePit2(int vmFd, uint flags);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_set_user_memory_region")]
    internal static partial int VmSetUserMemoryRegion(int vmFd, uint slot, uint flags, ulong guestPhysAddr, ulong memorySize, ulong userspaceAddr);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_get_dirty_log")]
    internal static unsafe partial int VmGetDirtyLog(int vmFd, uint slot, ulong* bitmap);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_clear_dirty_log")]
    internal static unsafe partial int VmClearDirtyLog(int vmFd, uint slot, ulong firstPage, uint numPages, ulong* bitmap);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_get_irqchip")]
    internal static unsafe partial int VmGetIrqchip(int vmFd, byte* state);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_set_irqchip")]
    internal static unsafe partial int VmSetIrqchip(int vmFd, byte* state);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_get_pit2")]
    internal static unsafe partial int VmGetPit2(int vmFd, byte* state);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_set_pit2")]
    internal static unsafe partial int VmSetPit2(int vmFd, byte* state);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_get_clock")]
    internal static unsafe partial int VmGetClock(int vmFd, byte* state);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vm_set_clock")]
    internal static unsafe partial int VmSetClock(int vmFd, byte* state);
}
