using System.Runtime.InteropServices;

namespace KvmPresync.Interop;

// Scheduling policy of the calling thread (libc; sched(7)).
internal static partial class Native
{
    /// <summary>SCHED_IDLE: the thread runs only on CPU time no normal thread wants; a waking normal thread preempts it at once.</summary>
    internal const int SchedIdle = 5;

    /// <summary>sched_setscheduler(2) with pid 0 (the calling thread) and a priority of 0: 0, or -1 with errno.</summary>
    [LibraryImport("libc", EntryPoint = "sched_setscheduler", SetLastError = true)]
    internal static partial int SchedSetScheduler(int pid, int policy, in int priority);

    /// <summary>sched_getscheduler(2) with pid 0: the calling thread's policy (0 = SCHED_OTHER), or -1 with errno.</summary>
    [LibraryImport("libc", EntryPoint = "sched_getscheduler", SetLastError = true)]
    internal static partial int SchedGetScheduler(int pid);
}
