using KvmPresync.Vmm.Interop;

namespace KvmPresync.Vmm.Devices;

/// <summary>
/// The vCPU thread runs ahead of the VMM's own threads. While a guest presyncs, the sender's harvesting, hashing and
/// sending (and, on one host, the receiver) compete with the vCPU for the host's CPUs; a paced guest that waits for a CPU
/// past its deadline drops work (a movie drops frames). Measured on kvm_pvm with 2 shared cores (docs/REPRODUCING.md,
/// "Guest slowdown"): the vCPU thread's run-queue wait rose from ~40 to ~270 ms/s during a movie guest's presync. A nice
/// below the VMM's (which stays at the process's) gives the vCPU a larger CPU share when both are runnable, so the sender
/// yields to the guest, not the other way round. Lowering nice needs CAP_SYS_NICE (root); without it nothing changes.
/// </summary>
internal static class VcpuPriority
{
    /// <summary>The vCPU thread's nice: 5 steps above the VMM's threads, about three times their CPU weight.</summary>
    public const int DefaultNice = -5;

    /// <summary>Overrides <see cref="DefaultNice"/> (-20..19); 0 leaves the vCPU thread at the process's priority (as before).</summary>
    public const string EnvironmentVariable = "KVMPRESYNC_VCPU_NICE";

    /// <summary>The nice to give the vCPU thread: <see cref="EnvironmentVariable"/> when set to a valid value, else <see cref="DefaultNice"/>.</summary>
    public static int Nice { get; } =
        int.TryParse(Environment.GetEnvironmentVariable(EnvironmentVariable), out int n) && n is >= -20 and <= 19 ? n : DefaultNice;

    /// <summary>Sets the calling (vCPU) thread's nice to <see cref="Nice"/>; false when not permitted or when it is 0.</summary>
    public static bool Raise() => Nice != 0 && VmmLibc.SetPriority(VmmLibc.PrioProcess, VmmLibc.GetTid(), Nice) == 0;
}
