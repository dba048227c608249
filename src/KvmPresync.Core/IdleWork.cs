using KvmPresync.Interop;

namespace KvmPresync.Core;

/// <summary>
/// Work that may take CPU only when nothing else wants it: run on a thread of its own under SCHED_IDLE (sched(7)). Used
/// for clean-up right after a switchover: on the destination, closing the write tracker's userfaultfd takes 5–8 ms of
/// CPU (the kernel walks the guest's page tables), at the moment the resumed guest and the source's reader of the
/// Resumed frame want the same cores. At normal priority it delayed that reader by up to 6 ms of the measured downtime.
/// Where the policy cannot be set the work still runs, at normal priority.
/// </summary>
internal static class IdleWork
{
    /// <summary>Starts <paramref name="work"/> on a new background thread at idle priority; the task completes (or faults) with it.</summary>
    public static Task Start(string name, Action work)
    {
        ArgumentNullException.ThrowIfNull(work);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            Native.SchedSetScheduler(0, Native.SchedIdle, 0); // best effort: on failure the work runs at normal priority
            try
            {
                work();
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        })
        { IsBackground = true, Name = name };
        thread.Start();
        return done.Task;
    }

    /// <summary>The calling thread's scheduling policy (sched_getscheduler(2)); for tests.</summary>
    internal static int CurrentPolicy() => Native.SchedGetScheduler(0);
}
