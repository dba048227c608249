using System.Globalization;
using KvmPresync.Libvirt;
using KvmPresync.Libvirt.Testbed;

namespace KvmPresync.Cli.Repro.Libvirt;

/// <summary>
/// Stock libvirt/QEMU live migration, what <c>virsh migrate --live</c> does: after the sync period (the guest just
/// runs), one managed <c>virDomainMigrate3</c> with VIR_MIGRATE_LIVE to the destination instance over
/// <c>tcp://ADDRESS:PORT</c>.
/// <list type="bullet">
/// <item><c>virsh-precopy</c>: QEMU's pre-copy until it converges within its default 300 ms downtime limit.</item>
/// <item><c>virsh-postcopy</c>: VIR_MIGRATE_POSTCOPY, switched to post-copy with <c>virDomainMigrateStartPostCopy</c> as
/// soon as QEMU's migration stream runs (its first pre-copy pass has begun; the switch does not wait for it to end,
/// as <c>virsh migrate --postcopy-after-precopy</c> would), so the destination resumes early and pulls what it lacks.
/// QEMU 7.2's destination opens a userfaultfd for that without <c>UFFD_USER_MODE_ONLY</c>, which the unprivileged
/// <c>libvirt-qemu</c> may not while <c>vm.unprivileged_userfaultfd = 0</c> ("Postcopy is not supported"), so the
/// destination instance runs QEMU as root with its capabilities (<see cref="PrivateLibvirtDaemonOptions.PrivilegedQemu"/>);
/// no host-wide setting changes.</item>
/// </list>
/// Downtime and bytes are libvirt's completed job statistics of the source (<c>downtime</c>, <c>data_processed</c>).
/// </summary>
public sealed class StockMigrationMode(bool postcopy) : ILibvirtReproMode
{
    public const string PrecopyName = "virsh-precopy", PostcopyName = "virsh-postcopy";

    public string Name => postcopy ? PostcopyName : PrecopyName;

    public (PrivateLibvirtDaemonOptions Source, PrivateLibvirtDaemonOptions Destination) TestbedOptions =>
        (new PrivateLibvirtDaemonOptions(), new PrivateLibvirtDaemonOptions { PrivilegedQemu = postcopy });

    public async Task<LibvirtModeOutcome> RunAsync(LibvirtReproContext context, CancellationToken ct)
    {
        context.Progress($"guest runs {context.Workload} for {context.SyncPeriod.TotalSeconds:0} s (stock migration sends nothing before launch)");
        await Task.Delay(context.SyncPeriod, ct);

        LibvirtDomain source = context.Guest.SourceDomain;
        using LibvirtConnection destination = context.Testbed.Destination.Connect();
        var parameters = new MigrationParameters().Uri(context.Testbed.NewMigrationUri()).DestinationXml(context.Guest.DestinationXml());
        if (context.Link.QemuBandwidthMiBps is { } mib) parameters.Bandwidth(mib);
        if (postcopy && context.Link.QemuPostcopyBandwidthBytesPerSecond is { } bps) parameters.Add("bandwidth.postcopy", bps);
        MigrateFlags flags = MigrateFlags.Live | (postcopy ? MigrateFlags.Postcopy : MigrateFlags.None);

        context.Progress($"launch: virDomainMigrate3 ({Name}) to the destination instance …");
        context.MarkLaunch();
        Task<LibvirtDomain> migrate = Task.Factory.StartNew(() => source.Migrate(destination, parameters, flags),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        string? switchFailure = null;
        try
        {
            if (postcopy) switchFailure = await SwitchToPostcopyAsync(context, source, migrate, ct);
            using LibvirtDomain onDestination = await migrate.WaitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            Abort(source, migrate);
            return new LibvirtModeOutcome { Succeeded = false, Failure = $"the migration did not finish within the run's time limit ({context.MsSinceLaunch() / 1000:0} s after launch); aborted" };
        }
        catch (LibvirtException e)
        {
            return new LibvirtModeOutcome { Succeeded = false, Failure = Explain(e), MigrateCallMs = context.MsSinceLaunch() };
        }
        double callMs = context.MsSinceLaunch();
        context.Progress($"virDomainMigrate3 returned {callMs:0} ms after launch");

        DomainJobStats stats = source.GetJobStats(completed: true);
        ulong? requests = stats.Values.TryGetValue("memory_postcopy_requests", out object? r) && r is ulong u ? u : null;
        string? failure = switchFailure
            ?? (stats.Type != DomainJobType.Completed ? $"libvirt reports the migration job as {stats.Type}, not completed" : null);
        return new LibvirtModeOutcome
        {
            Succeeded = failure is null,
            Failure = failure,
            DowntimeMs = stats.DowntimeMs,
            LaunchBytes = (long)(stats.DataProcessed ?? stats.MemoryProcessed ?? 0),
            JobStats = stats.Values,
            MigrateCallMs = callMs,
        };

        static string Explain(LibvirtException e) =>
            e.Message.Contains("Postcopy is not supported", StringComparison.Ordinal)
                ? $"{e.Message} — QEMU's post-copy needs a userfaultfd in the destination QEMU; unprivileged (libvirt-qemu) it may not open one while vm.unprivileged_userfaultfd = 0 (the destination instance should run QEMU privileged)"
                : e.Message;
    }

    /// <summary>
    /// Waits until QEMU's migration stream runs (the source's job reports memory processed), then asks for post-copy.
    /// Returns why the switch failed (the migration then goes on as pre-copy and the run is not a post-copy figure), or null.
    /// </summary>
    private static async Task<string?> SwitchToPostcopyAsync(LibvirtReproContext context, LibvirtDomain source, Task migrate, CancellationToken ct)
    {
        while (!migrate.IsCompleted)
        {
            DomainJobStats job;
            try { job = source.JobStats; }
            catch (LibvirtException) { job = new DomainJobStats(DomainJobType.None, new Dictionary<string, object>()); }
            if (job.Type == DomainJobType.Unbounded && job.MemoryProcessed > 0)
            {
                try
                {
                    source.StartPostCopy();
                    context.Progress(string.Create(CultureInfo.InvariantCulture,
                        $"switched to post-copy {context.MsSinceLaunch():0} ms after launch ({job.MemoryProcessed / 1048576.0:0.0} MiB sent so far)"));
                    return null;
                }
                catch (LibvirtException e) { return $"the switch to post-copy failed, so this was not a post-copy migration: {e.Message}"; }
            }
            await Task.Delay(5, ct);
        }
        return "the migration ended before its stream was seen running, so it was never switched to post-copy";
    }

    private static void Abort(LibvirtDomain source, Task migrate)
    {
        try { source.AbortJob(); }
        catch (LibvirtException) { } // no job left to abort
        try { migrate.Wait(TimeSpan.FromSeconds(30)); }
        catch (AggregateException) { } // the aborted migrate call fails, as it should
    }
}
