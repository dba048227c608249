using System.Runtime.InteropServices;

namespace KvmPresync.Kvm.Interop;

// vCPU ioctls (native/shim/vcpu.c). Every function returns >= 0 or -errno.
internal static partial class KvmNative
{
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_create")]
    internal static partial int VcpuCreate(int vmFd, uint vcpuId);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_map_run")]
    internal static partial nint VcpuMapRun(int vcpuFd, ulong size, out int err);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_run")]
    internal static partial int VcpuRun(int vcpuFd);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_set_cpuid2")]
    internal static unsafe partial int VcpuSetCpuid2(int vcpuFd, KvmCpuidEntry2* entries, uint count);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_get_regs")]
    internal static partial int VcpuGetRegs(int vcpuFd, out KvmRegs regs);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_set_regs")]
    internal static partial int VcpuSetRegs(int vcpuFd, in KvmRegs regs);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_get_sregs")]
    internal static partial int VcpuGetSregs(int vcpuFd, out KvmSregs sregs);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_set_sregs")]
    internal static partial int VcpuSetSregs(int vcpuFd, in KvmSregs sregs);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_get_msrs")]
    internal static unsafe partial int VcpuGetMsrs(int vcpuFd, KvmMsrEntry* entries, uint count);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_set_msrs")]
    internal static unsafe partial int VcpuSetMsrs(int vcpuFd, KvmMsrEntry* entries, uint count);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_get_mp_state")]
    internal static partial int VcpuGetMpState(int vcpuFd, out uint mpState);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_set_mp_state")]
    internal static partial int VcpuSetMpState(int vcpuFd, uint mpState);

    // The blob-valued state (fpu, xsave, xcrs, lapic, events, debugregs): buffers sized by kp_layout_sizeof.
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_get_fpu")] internal static unsafe partial int VcpuGetFpu(int fd, byte* s);
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_set_fpu")] internal static unsafe partial int VcpuSetFpu(int fd, byte* s);
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_get_xsave")] internal static unsafe partial int VcpuGetXsave(int fd, byte* s);
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_set_xsave")] internal static unsafe partial int VcpuSetXsave(int fd, byte* s);
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_get_xcrs")] internal static unsafe partial int VcpuGetXcrs(int fd, byte* s);
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_set_xcrs")] internal static unsafe partial int VcpuSetXcrs(int fd, byte* s);
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_get_lapic")] internal static unsafe partial int VcpuGetLapic(int fd, byte* s);
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_set_lapic")] internal static unsafe partial int VcpuSetLapic(int fd, byte* s);
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_get_vcpu_events")] internal static unsafe partial int VcpuGetEvents(int fd, byte* s);
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_set_vcpu_events")] internal static unsafe partial int VcpuSetEvents(int fd, byte* s);
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_get_debugregs")] internal static unsafe partial int VcpuGetDebugregs(int fd, byte* s);
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_vcpu_set_debugregs")] internal static unsafe partial int VcpuSetDebugregs(int fd, byte* s);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_kick_init")]
    internal static partial int KickInit();

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_thread_self")]
    internal static partial ulong ThreadSelf();

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_thread_kick")]
    internal static partial int ThreadKick(ulong thread);
}
