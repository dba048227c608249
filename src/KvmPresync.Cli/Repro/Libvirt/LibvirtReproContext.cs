using System.Diagnostics;
using KvmPresync.Libvirt.Testbed;

namespace KvmPresync.Cli.Repro.Libvirt;

/// <summary>What a <see cref="ILibvirtReproMode"/> gets for one run: the testbed, the fresh guest, the link, the clock.</summary>
public sealed class LibvirtReproContext
{
    private readonly TextWriter _progress;
    private readonly DomainRunningWatch _destination;

    internal LibvirtReproContext(LibvirtTestbed testbed, LinuxGuestDomain guest, string workload, int run, TimeSpan syncPeriod,
        LibvirtLink link, TextWriter progress, DomainRunningWatch destination)
    {
        _destination = destination;
        Testbed = testbed;
        Guest = guest;
        Workload = workload;
        Run = run;
        SyncPeriod = syncPeriod;
        Link = link;
        _progress = progress;
    }

    public LibvirtTestbed Testbed { get; }

    /// <summary>The guest, running its workload on <see cref="LibvirtTestbed.Source"/>; migrate it with <see cref="LinuxGuestDomain.DestinationXml"/>.</summary>
    public LinuxGuestDomain Guest { get; }

    public string Workload { get; }

    public int Run { get; }

    /// <summary>How long the guest runs (and a presync mode syncs) before launch: <c>--sync-seconds</c>.</summary>
    public TimeSpan SyncPeriod { get; }

    public LibvirtLink Link { get; }

    /// <summary>When <see cref="MarkLaunch"/> was called (<see cref="Stopwatch.GetTimestamp"/>), or null.</summary>
    public long? LaunchedAt { get; private set; }

    /// <summary>
    /// Marks the launch request: launch-to-resume is measured from here to the destination domain running (the harness
    /// starts watching the destination now; nothing polls it before).
    /// </summary>
    public void MarkLaunch()
    {
        LaunchedAt = Stopwatch.GetTimestamp();
        _destination.Arm();
    }

    /// <summary>
    /// Why the destination domain runs, as libvirt said when it was first seen running (<see cref="DomainRunningWatch.ReasonPostcopy"/>
    /// after a switch to post-copy), or null while it has not run.
    /// </summary>
    public int? DestinationRunningReason => _destination.RunningReason;

    /// <summary>Milliseconds from launch to now.</summary>
    public double MsSinceLaunch() => LaunchedAt is { } t ? Stopwatch.GetElapsedTime(t).TotalMilliseconds : 0;

    /// <summary>A progress line on stderr (a run takes tens of seconds).</summary>
    public void Progress(string message)
    {
        lock (_progress) _progress.WriteLine($"        {message}");
    }
}

/// <summary>
/// The link the migration crosses. <c>loopback</c>: TCP on 127.0.0.1 between the two instances' QEMUs, shaped by
/// QEMU's own rate limit (migration bandwidth) at the link rate; <c>netns</c>: the instances run in the network
/// namespaces of tools/netns-link.sh (veth shaped by tc tbf), QEMU unlimited.
/// </summary>
public sealed record LibvirtLink(string Kind, double BitsPerSecond, string MigrationAddress, string? SourceNamespace, string? DestinationNamespace)
{
    /// <summary>QEMU's migration bandwidth, MiB/s (VIR_MIGRATE_PARAM_BANDWIDTH), when QEMU itself shapes the link.</summary>
    public ulong? QemuBandwidthMiBps => Kind == "loopback" ? Math.Max(1, (ulong)(BitsPerSecond / 8 / 1048576)) : null;

    /// <summary>The same in bytes/s, for post-copy (VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY).</summary>
    public ulong? QemuPostcopyBandwidthBytesPerSecond => Kind == "loopback" ? (ulong)(BitsPerSecond / 8) : null;
}
