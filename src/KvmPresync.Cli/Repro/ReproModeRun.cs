using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;

namespace KvmPresync.Cli.Repro;

/// <summary>One migration of one workload in one mode, as the repro harness measured it.</summary>
public sealed record ReproModeRun
{
    public required string Workload { get; init; }
    /// <summary>
    /// precopy | slowstart | predict+slowstart (the KVM target: classic pre-copy, or the sync policy run before launch);
    /// virsh-precopy | virsh-postcopy | … (the libvirt target, <see cref="Libvirt.LibvirtReproModes"/>).
    /// </summary>
    public required string Mode { get; init; }
    public required int Run { get; init; }
    public required MigrationResult Result { get; init; }
    /// <summary>Guest progress units per second during the sync period (before launch).</summary>
    public double ProgressRateDuringSync { get; init; }
    /// <summary>What a <c>--target libvirt</c> run measured beyond <see cref="Result"/> (heartbeat handover, job stats); null for the KVM target.</summary>
    public Libvirt.LibvirtRunDetail? Libvirt { get; init; }
}
