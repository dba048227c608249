using System.Runtime.InteropServices;

namespace KvmPresync.Libvirt.Interop;

// libc calls the private-daemon testbed needs to own its processes (Testbed/): who we are, and signals by pid.
internal static partial class LibcNative
{
    internal const int SigKill = 9;
    internal const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill")]
    internal static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    internal static partial uint GetEffectiveUserId();
}
