namespace KvmPresync.Core;

/// <summary>
/// How a guest's vCPU thread has spent its time so far (cumulative, nanoseconds), for explaining a slowdown: the guest
/// can only fall behind by using more CPU per unit of work (dirty logging's write-protect faults, cache pollution) or by
/// not getting the CPU when it is runnable (host-CPU contention with the sender and receiver).
/// </summary>
/// <param name="OnCpuNs">Time the vCPU thread ran on a host CPU: guest code, KVM (faults, exits) and the VMM's exit handling.</param>
/// <param name="RunQueueWaitNs">Time the vCPU thread was runnable but waited for a host CPU (the kernel's run-queue delay).</param>
/// <param name="PaceIdleNs">Time the guest slept because it had nothing due (its pace deadline was in the future).</param>
public readonly record struct GuestRunStats(long OnCpuNs, long RunQueueWaitNs, long PaceIdleNs)
{
    public static GuestRunStats operator -(GuestRunStats a, GuestRunStats b) =>
        new(a.OnCpuNs - b.OnCpuNs, a.RunQueueWaitNs - b.RunQueueWaitNs, a.PaceIdleNs - b.PaceIdleNs);
}

/// <summary>A migration source that can tell how its vCPU thread spent its time (<see cref="GuestRunStats"/>); optional.</summary>
public interface IGuestRunStatsSource
{
    /// <summary>The cumulative figures now; null when they cannot be read (e.g. the vCPU has not started).</summary>
    GuestRunStats? RunStats { get; }
}
