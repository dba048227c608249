using KvmPresync.Libvirt.Testbed;

namespace KvmPresync.Cli.Repro.Libvirt;

/// <summary>
/// One way of moving a running libvirt guest to the testbed's destination: a mode of <c>repro --target libvirt</c>
/// (<see cref="LibvirtReproModes"/> lists them by name). <see cref="LibvirtRepro"/> does everything around it the same
/// for every mode: two fresh private libvirt instances (<see cref="TestbedOptions"/>), a fresh Linux guest running the
/// workload on the source, the console polled throughout, the destination's running state watched, and afterwards the
/// heartbeat chain checked across both consoles and the launch-to-resume time taken from the watch.
/// A mode only runs the sync period and the migration.
/// </summary>
public interface ILibvirtReproMode
{
    /// <summary>The mode's name in <c>--modes</c>, the table and the JSON.</summary>
    string Name { get; }

    /// <summary>
    /// How the mode needs the testbed's two instances set up (a qemu hook, privileged QEMU …); the harness adds the
    /// link's network namespaces (<c>--link-kind netns</c>).
    /// </summary>
    (PrivateLibvirtDaemonOptions Source, PrivateLibvirtDaemonOptions Destination) TestbedOptions { get; }

    /// <summary>
    /// Called with the guest's workload running on the source (its first heartbeat after KPREADY was seen). Runs the
    /// sync period (<see cref="LibvirtReproContext.SyncPeriod"/>; the stock modes just let the guest run), calls
    /// <see cref="LibvirtReproContext.MarkLaunch"/> at launch, and returns when the migration is over: the destination
    /// runs the guest, or the migration failed (then the source guest should still run). Must not poll the guest's
    /// console (the harness does, to time each heartbeat). Honour <paramref name="ct"/>: the harness cancels a run that
    /// takes too long.
    /// </summary>
    Task<LibvirtModeOutcome> RunAsync(LibvirtReproContext context, CancellationToken ct);

    /// <summary>What the mode needs in the fresh guest's domain XML (presync: the tracker in QEMU's environment); default: nothing.</summary>
    string EditGuestXml(string xml) => xml;
}

/// <summary>What a mode tells the harness about its migration; the harness adds the timing and the heartbeat verdict.</summary>
public sealed record LibvirtModeOutcome
{
    public required bool Succeeded { get; init; }

    /// <summary>Why it failed, precisely (shown in the report row).</summary>
    public string? Failure { get; init; }

    /// <summary>Guest downtime as the migration measured it (libvirt's completed job stats <c>downtime</c>, or the mode's own), ms.</summary>
    public double? DowntimeMs { get; init; }

    /// <summary>Bytes sent before launch.</summary>
    public long SyncBytes { get; init; }

    /// <summary>Bytes sent from launch to the end (for QEMU's migration: job stats <c>data_processed</c>).</summary>
    public long LaunchBytes { get; init; }

    /// <summary>Whether the mode verified the destination's memory itself (ours: the digest); null when it cannot.</summary>
    public bool? MemoryVerified { get; init; }

    /// <summary>libvirt's completed job statistics of the migration, as reported, when there were any.</summary>
    public IReadOnlyDictionary<string, object>? JobStats { get; init; }

    /// <summary>When the migrate call returned, ms after launch (it returns after Finish/Confirm, later than the guest runs).</summary>
    public double? MigrateCallMs { get; init; }

    /// <summary>The presync sender's full result (rounds, convergence …) for a mode that runs ours; null for stock modes.</summary>
    public KvmPresync.Migration.MigrationResult? Presync { get; init; }
}
