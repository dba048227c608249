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
/// soon as libvirt and QEMU accept it (retried from launch on; QEMU refuses until its migration has started), so QEMU
/// switches at its stream's first iteration rather than after a first pre-copy pass as
/// <c>virsh migrate --postcopy-after-precopy</c> would: the destination resumes early and pulls what it lacks. A run
/// whose destination did not resume in post-copy (libvirt's running reason) is failed, not counted.
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
        string? failure = switchFailure
            ?? (stats.Type != DomainJobType.Completed ? $"libvirt reports the migration job as {stats.Type}, not completed" : null)
            ?? (postcopy && context.DestinationRunningReason is { } why && why != DomainRunningWatch.ReasonPostcopy
                ? $"the destination resumed as '{DomainRunningWatch.ReasonName(why)}', not in post-copy: QEMU switched only after pre-copy had moved everything, so this is not a post-copy figure"
                : null);
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
    /// Asks for post-copy from launch on, every 5 ms until libvirt and QEMU accept it (they refuse until QEMU's migration
    /// has started); QEMU then switches at its stream's first iteration. Returns why no switch was accepted (the
    /// migration then ran as pre-copy and the run is not a post-copy figure), or null.
    /// </summary>
    private static async Task<string?> SwitchToPostcopyAsync(LibvirtReproContext context, LibvirtDomain source, Task migrate, CancellationToken ct)
    {
        string? refused = null;
        while (!migrate.IsCompleted)
        {
            try
            {
                source.StartPostCopy();
                context.Progress($"post-copy requested {context.MsSinceLaunch():0} ms after launch (accepted once QEMU's migration had started)");
                return null;
            }
            catch (LibvirtException e) { refused = e.Message; }
            await Task.Delay(5, ct);
        }
        return $"the migration ended before libvirt accepted the switch to post-copy, so it ran as pre-copy (last refusal: {refused})";
    }

    private static void Abort(LibvirtDomain source, Task migrate)
    {
        try { source.AbortJob(); }
        catch (LibvirtException) { } // no job left to abort
        try { migrate.Wait(TimeSpan.FromSeconds(30)); }
        catch (AggregateException) { } // the aborted migrate call fails, as it should
    }
}
