using KvmPresync.Libvirt.Guest;

namespace KvmPresync.Cli.Repro.Libvirt;

/// <summary>What a <c>--target libvirt</c> run measured beyond <see cref="KvmPresync.Migration.MigrationResult"/>'s fields.</summary>
public sealed record LibvirtRunDetail
{
    /// <summary>The libvirt domain (fresh for the run).</summary>
    public required string Domain { get; init; }

    /// <summary>Why libvirt said the destination domain runs when it was first seen running: "migrated" (pre-copy), "postcopy".</summary>
    public string? DestinationRunningReason { get; init; }

    /// <summary>From asking libvirt to start the guest to its first heartbeat, ms.</summary>
    public double BootMs { get; init; }

    /// <summary>Downtime as the migration reported it (libvirt's job stats <c>downtime</c> for the stock modes), ms.</summary>
    public double? ReportedDowntimeMs { get; init; }

    /// <summary>When the migrate call returned, ms after launch (Finish/Confirm come after the guest runs).</summary>
    public double? MigrateCallMs { get; init; }

    /// <summary>The heartbeat chain across the migration and the handover as the console timed it.</summary>
    public required HeartbeatHandover Heartbeats { get; init; }

    /// <summary>libvirt's completed job statistics, as reported.</summary>
    public IReadOnlyDictionary<string, object>? JobStats { get; init; }
}
