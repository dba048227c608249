using System.Runtime.InteropServices;

namespace KvmPresync.Libvirt.Interop;

// libc calls the private-daemon testbed needs to own its processes (Testbed/): who we are. Signals by pid:
// KvmPresync.ProcessMemory.Interop.ProcessLibc.
internal static partial class LibcNative
{
    [LibraryImport("libc", EntryPoint = "geteuid")]
    internal static partial uint GetEffectiveUserId();
}
