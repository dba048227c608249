using System.Runtime.InteropServices;

namespace KvmPresync.ProcessMemory.Interop;

// libc calls that .NET has no API for: SIGTERM to a process it did not start (the process-tree capture, and the libvirt
// testbed's daemons).
internal static partial class ProcessLibc
{
    internal const int SigTerm = 15, SigKill = 9;

    /// <summary>kill(2): 0, or -1 with errno (ESRCH: gone).</summary>
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    internal static partial int Kill(int pid, int signal);
}
