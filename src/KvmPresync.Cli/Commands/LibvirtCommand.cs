using System.CommandLine;
using KvmPresync.Engine;
using KvmPresync.Libvirt;
using KvmPresync.Libvirt.Presync;
using KvmPresync.Trace;

namespace KvmPresync.Cli.Commands;

/// <summary>
/// <c>kvmpresync libvirt check|presync</c>: presync a running libvirt domain to a receiver on the destination host; at
/// launch libvirt/QEMU move only its device state (docs/LIBVIRT.md).
/// </summary>
internal static class LibvirtCommand
{
    public static Command Create()
    {
        var cmd = new Command("libvirt", "Pre-synchronized migration of libvirt domains: QEMU's RAM moves ahead, libvirt moves only the device state at launch (docs/LIBVIRT.md)");
        cmd.Subcommands.Add(Check());
        cmd.Subcommands.Add(Presync());
        return cmd;
    }

    private static Option<string> Connect() => new("--connect", "-c")
    {
        Description = "The source libvirt URI", DefaultValueFactory = _ => "qemu:///system",
    };

    private static Command Check()
    {
        var domain = new Argument<string>("DOMAIN") { Description = "The domain's name" };
        var connect = Connect();
        var tracker = new Option<string>("--tracker") { Description = "The preload tracker's path to suggest in the XML", DefaultValueFactory = _ => DefaultTrackerPath };
        var cmd = new Command("check", "Check that a domain can be presynced: RAM in a shared file, the dirty tracker in QEMU, pti=on for TCG; prints the exact XML to add when not")
        {
            domain, connect, tracker,
        };
        cmd.SetAction(r =>
        {
            using LibvirtConnection conn = LibvirtConnection.Open(r.GetValue(connect)!);
            using LibvirtDomain dom = conn.LookupDomain(r.GetValue(domain)!);
            var findings = new List<DomainFinding>(DomainCheck.CheckXml(dom.GetXml(DomainXmlFlags.Inactive), r.GetValue(tracker)!));
            if (dom.State is DomainState.Running or DomainState.Paused)
                findings.AddRange(DomainCheck.CheckRunning(dom.Uuid, checked((long)dom.Info.MaxMemoryKiB * 1024)));
            else
                Console.WriteLine($"domain {dom.Name} is {dom.State}: only its XML was checked (start it to check its QEMU too)");
            foreach (DomainFinding f in findings)
            {
                Console.WriteLine($"{(f.Met ? "ok  " : "FAIL")} {f.Requirement}: {f.Detail}");
                if (!f.Met && f.Fix is { } fix) Console.WriteLine("     fix: " + fix.Replace("\n", "\n          ", StringComparison.Ordinal));
            }
            int failed = findings.Count(f => !f.Met);
            Console.WriteLine(failed == 0 ? $"domain {dom.Name} can be presynced" : $"domain {dom.Name}: {failed} requirement(s) not met");
            return failed == 0 ? ExitCodes.Ok : ExitCodes.Error;
        });
        return cmd;
    }

    private static Command Presync()
    {
        var domain = new Argument<string>("DOMAIN") { Description = "The running domain's name" };
        var connect = Connect();
        var to = new Option<string>("--to") { Description = "The destination's receiver (kvmpresync receive --libvirt) at ADDRESS:PORT", Required = true };
        var destConnect = new Option<string>("--dest-connect") { Description = "The destination's libvirt URI, as for virsh migrate (opened by this process)", Required = true };
        var migrateUri = new Option<string?>("--migrate-uri") { Description = "QEMU's device-state stream address, tcp://HOST:PORT (default: libvirt picks)" };
        var qmpDir = new Option<string>("--dest-qmp-dir") { Description = "The destination receiver's --qmp-dir", DefaultValueFactory = _ => LibvirtDestinationOptions.DefaultQmpDirectory };
        var destXml = new Option<string?>("--dest-xml") { Description = "The destination's domain XML (as virsh migrate --xml; default: the domain's migratable XML)" };
        var psk = MigrationOptions.PskFile(required: true);
        var link = MigrationOptions.LinkRate();
        var bandwidth = MigrationOptions.Bandwidth();
        var policy = MigrationOptions.Policy();
        var launchAfter = new Option<string?>("--launch-after") { Description = "Launch after this long, e.g. 60s (default: on Enter or SIGUSR1)" };
        var maxFinal = new Option<string>("--max-final-duration") { Description = "How long live copying may continue after launch before the domain is suspended", DefaultValueFactory = _ => "300ms" };
        var launchTarget = MigrationOptions.LaunchTarget();
        var reconnectFor = new Option<string>("--reconnect-for") { Description = "Reconnect for up to this long when the connection drops during sync (the session id also names the memory to the destination's hook; must be > 0)", DefaultValueFactory = _ => "2m" };
        var json = new Option<string?>("--json") { Description = "Write the migration result to this file" };
        var metrics = MetricsOption.Create("the presync — dirty rate, pending/held/deferred bytes, window, RTT, bytes sent, rounds, readiness (no guest progress: a libvirt domain reports no work units)");
        var tls = new TlsOptionsBinding();
        var cmd = new Command("presync", "Keep a running domain's RAM in sync with a receiver on the destination host; at launch suspend it, send the last delta, " +
                                         "verify, and let libvirt migrate only the device state (x-ignore-shared). Any failure before the destination runs resumes the domain here")
        {
            domain, connect, to, destConnect, migrateUri, qmpDir, destXml, psk, link, bandwidth, policy, launchAfter, maxFinal, launchTarget, reconnectFor, json, metrics,
        };
        tls.AddTo(cmd);
        cmd.SetAction(async (r, ct) =>
        {
            TimeSpan reconnect = Units.ParseDuration(r.GetValue(reconnectFor)!, reconnectFor.Name);
            if (reconnect <= TimeSpan.Zero) throw new ArgumentException("--reconnect-for must be positive for a libvirt presync: its session id names the memory to the destination's hook");
            var settings = new PresyncRun.Settings(MigrationOptions.ParseEndpoint(r.GetValue(to)!, "--to"), r.GetValue(psk)!, MigrationOptions.ParseLinkRate(r.GetValue(link)!),
                Wire.LinkRate.Parse(r.GetValue(bandwidth)!), MigrationOptions.ParseLivePolicy(r.GetValue(policy)!),
                r.GetValue(launchAfter) is { } after ? Units.ParseDuration(after, launchAfter.Name).TotalSeconds : null, r.GetValue(json),
                MaxFinalDuration: Units.ParseDuration(r.GetValue(maxFinal)!, maxFinal.Name), ReconnectFor: reconnect)
            {
                Tls = tls.Load(r),
                LaunchTarget = MigrationOptions.ParseLaunchTarget(r.GetValue(launchTarget)!),
            };
            await using MetricsServing? serving = MetricsOption.Start(r.GetValue(metrics)); // before the domain is touched: a bad --metrics fails at once
            settings = settings with { Metrics = serving?.Registry, GuestReportsProgress = false };
            string name = r.GetValue(domain)!;
            using LibvirtMigrationSource source = LibvirtMigrationSource.Open(r.GetValue(connect)!, name, new LibvirtHandoverOptions
            {
                DestinationUri = r.GetValue(destConnect)!, MigrateUri = r.GetValue(migrateUri), QmpDirectory = r.GetValue(qmpDir)!,
                EditDestinationXml = r.GetValue(destXml) is { } file ? File.ReadAllText(file) is var x ? _ => x : null : null,
            });
            Console.WriteLine($"domain {name}: QEMU pid {source.ProcessId}, {Units.FormatBytes(source.Memory.SizeBytes)} of RAM tracked from outside");
            int code = await PresyncRun.RunAsync(source, settings, LiveView.ForConsole(), ct, sender => source.SessionId = sender.SessionIdHex());
            if (code != ExitCodes.Ok) Console.Error.WriteLine($"domain {name} runs here still (or again)");
            return code;
        });
        return cmd;
    }

    /// <summary>Where `make install-libvirt` (and the docs) put the preload tracker: readable by libvirt's QEMU user.</summary>
    public const string DefaultTrackerPath = "/usr/local/lib/kvmpresync/libkvmpresync-track.so";
}
