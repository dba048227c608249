using System.Runtime.InteropServices;

namespace KvmPresync.Kvm.Interop;

// /dev/kvm system ioctls (native/shim/system.c). Every function returns >= 0 or -errno.
internal static partial class KvmNative
{
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_kvm_open", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int KvmOpen(string path);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_close")]
    internal static partial int Close(int fd);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_kvm_get_api_version")]
    internal static partial int KvmGetApiVersion(int kvmFd);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_check_extension")]
    internal static partial int CheckExtension(int fd, uint cap);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_kvm_get_vcpu_mmap_size")]
    internal static partial int KvmGetVcpuMmapSize(int kvmFd);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_kvm_get_msr_index_list")]
    internal static unsafe partial int KvmGetMsrIndexList(int kvmFd, uint* indices, uint capacity);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_kvm_get_supported_cpuid")]
    internal static unsafe partial int KvmGetSupportedCpuid(int kvmFd, KvmCpuidEntry2* entries, uint capacity);
}
