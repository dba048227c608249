using System.Runtime.InteropServices;

namespace KvmPresync.Vmm.Interop;

// libc calls that .NET has no API for: the calling thread's id and its scheduling priority (nice), for the vCPU thread.
internal static partial class VmmLibc
{
    internal const int PrioProcess = 0;

    /// <summary>gettid(2): the calling thread's kernel id.</summary>
    [LibraryImport("libc", EntryPoint = "gettid")]
    internal static partial int GetTid();

    /// <summary>setpriority(2) on one thread (<c>which</c> = PRIO_PROCESS, <c>who</c> = a tid): 0, or -1 with errno (EACCES: no CAP_SYS_NICE to lower nice).</summary>
    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    internal static partial int SetPriority(int which, int who, int nice);
}
