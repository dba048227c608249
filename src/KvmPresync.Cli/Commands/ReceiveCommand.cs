using KvmPresync.Libvirt.Presync;
using System.CommandLine;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using KvmPresync.Core;
using KvmPresync.Kvm;
using KvmPresync.Migration;
using KvmPresync.ProcessMemory;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Cli.Commands;

/// <summary>
/// <c>kvmpresync receive</c>: a migration receiver that serves until stopped (<see cref="ReceiveService"/>): any number
/// of migrations, one after another and at the same time; each resumed guest keeps running here. SIGTERM or SIGINT
/// drains (no new connections, sessions in flight aborted, resumed guests keep running); a second one stops the guests.
/// <c>--once</c> serves one migration and exits with its outcome (scripts, repro).
/// </summary>
internal static class ReceiveCommand
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
    private static readonly JsonSerializerOptions JsonIndented = new(Json) { WriteIndented = true };

    public sealed record Settings(IPEndPoint Listen, string PskFile, double LinkRate, long MaxMemory, int MaxSessions, TimeSpan HandshakeTimeout,
        TimeSpan IdleTimeout, double? RunSeconds, string? Json, bool Once, TlsOptions? Tls, LibvirtDestinationOptions? Libvirt = null, string? Metrics = null);

    public static Command Create()
    {
        var listen = new Option<string>("--listen", "-l") { Description = "ADDRESS:PORT to listen on, e.g. 127.0.0.1:7700", Required = true };
        var psk = MigrationOptions.PskFile(required: true);
        var link = MigrationOptions.LinkRate();
        var maxMemory = new Option<string?>("--max-memory")
        {
            Description = "Refuse senders announcing more guest memory than this, e.g. 16G (checked before authentication); default: this host's MemAvailable " +
                          "(/proc/meminfo) when receive starts. Admission also refuses a guest larger than what the host has free at that moment",
        };
        var maxSessions = new Option<int>("--max-sessions") { Description = "Migrations served at the same time; more connections get Abort(Busy)", DefaultValueFactory = _ => 4 };
        var handshakeTimeout = new Option<string>("--handshake-timeout") { Description = "A sender must complete the handshake within this time of connecting", DefaultValueFactory = _ => "10s" };
        var idleTimeout = new Option<string>("--idle-timeout") { Description = "After the handshake, a sender silent this long is dropped (its guest is not resumed)", DefaultValueFactory = _ => "30s" };
        var runFor = new Option<double?>("--run-seconds") { Description = "Keep each resumed guest running this many seconds, then stop it (default: until the service is stopped twice, or with --once until Ctrl-C)" };
        var json = new Option<string?>("--json") { Description = "Write each session's result as JSON to this file (with --once: one object; otherwise one line per session)" };
        var once = new Option<bool>("--once") { Description = "Serve one migration, then exit with its outcome (0 resumed and healthy, 5 migration failed, 3/4 the resumed guest failed/unhealthy)" };
        var libvirt = new Option<bool>("--libvirt") { Description = "Receive libvirt domains (kvmpresync libvirt presync) instead of KVM guests: RAM files for QEMU, answered to the libvirt hook (docs/LIBVIRT.md)" };
        var libvirtConnect = new Option<string>("--libvirt-connect") { Description = "With --libvirt: this host's libvirt URI", DefaultValueFactory = _ => "qemu:///system" };
        var ramDir = new Option<string>("--ram-dir") { Description = "With --libvirt: where the sessions' RAM files are filled; on memory_backing_dir's filesystem", DefaultValueFactory = _ => LibvirtDestinationOptions.DefaultRamDirectory };
        var backingDir = new Option<string?>("--memory-backing-dir") { Description = "With --libvirt: libvirt's memory_backing_dir (default: read from /etc/libvirt/qemu.conf)" };
        var hookSocket = new Option<string>("--hook-socket") { Description = "With --libvirt: the socket kvmpresync-libvirt-hook asks", DefaultValueFactory = _ => LibvirtDestinationOptions.DefaultHookSocket };
        var qmpDir = new Option<string>("--qmp-dir") { Description = "With --libvirt: where destination QEMUs open their extra monitor (the source's --dest-qmp-dir)", DefaultValueFactory = _ => LibvirtDestinationOptions.DefaultQmpDirectory };
        var metrics = MetricsOption.Create("the service — sessions active (one series per session), ended by outcome, refused by reason, bytes received");
        var cmd = new Command("receive",
            "Receive pre-synchronized migrations until stopped: authenticate each sender, admit its memory, fill it, verify, resume the guest; " +
            "one log line per event on standard error. SIGTERM/SIGINT: stop accepting and abort migrations in progress; resumed guests keep running " +
            "until --run-seconds or a second signal. Notifies systemd (Type=notify) when NOTIFY_SOCKET is set")
        {
            listen, psk, link, maxMemory, maxSessions, handshakeTimeout, idleTimeout, runFor, json, once, libvirt, libvirtConnect, ramDir, backingDir, hookSocket, qmpDir, metrics,
        };
        var tls = new TlsOptionsBinding(); // --tls-cert/--tls-key/--tls-ca
        tls.AddTo(cmd);
        cmd.SetAction((r, ct) => RunAsync(new Settings(MigrationOptions.ParseEndpoint(r.GetValue(listen)!, "--listen"), r.GetValue(psk)!,
            MigrationOptions.ParseLinkRate(r.GetValue(link)!), r.GetValue(maxMemory) is { } max ? Units.ParseSize(max, maxMemory.Name) : HostMemory.AvailableBytes(),
            r.GetValue(maxSessions), Units.ParsePositiveDuration(r.GetValue(handshakeTimeout)!, handshakeTimeout.Name), Units.ParsePositiveDuration(r.GetValue(idleTimeout)!, idleTimeout.Name),
            r.GetValue(runFor), r.GetValue(json), r.GetValue(once), tls.Load(r),
            r.GetValue(libvirt) ? new LibvirtDestinationOptions
            {
                ConnectUri = r.GetValue(libvirtConnect)!, RamDirectory = r.GetValue(ramDir)!, MemoryBackingDirectory = r.GetValue(backingDir),
                HookSocket = r.GetValue(hookSocket)!, QmpDirectory = r.GetValue(qmpDir)!,
            } : null, r.GetValue(metrics))));
        return cmd;
    }

    private static async Task<int> RunAsync(Settings s)
    {
        using PreSharedKey key = MigrationOptions.LoadKey(s.PskFile);
        await using MetricsServing? serving = MetricsOption.Start(s.Metrics); // before anything else starts: a bad --metrics fails at once
        var log = new ServiceLog(line => Console.Error.WriteLine(line));
        using LibvirtDestination? libvirt = s.Libvirt is { } lv ? LibvirtDestination.Start(lv, line => log.Info("libvirt.hook", null, ("answer", line))) : null;
        using KvmSystem? kvm = libvirt is null ? KvmSystem.Open() : null;
        // Our own destinations: re-hash every page written to the destination's memory since it landed (catches a change after
        // landing), where this kernel can track writes; libvirt's RAM files are QEMU's and may be huge pages: as they landed.
        string? untracked = null;
        bool trackWrites = libvirt is null && UserfaultfdHandle.IsAvailable(out untracked);
        var options = new ReceiveServiceOptions
        {
            Receiver = new ReceiverOptions
            {
                LinkBitsPerSecond = s.LinkRate,
                MaxMemoryBytes = s.MaxMemory,
                HandshakeTimeout = s.HandshakeTimeout,
                IdleTimeout = s.IdleTimeout,
                Tls = s.Tls,
                DeviceStateHandover = libvirt is not null,
                TrackWrites = trackWrites ? memory => GuestMemoryWriteTracker.Track(memory) : null,
            },
            MaxConcurrentSessions = s.MaxSessions,
        };
        var service = new ReceiveService(key, layout => libvirt is not null ? LibvirtReceive.CreateTarget(libvirt, layout) : new MachineMigrationTarget(kvm!,
            layout.Slots.Select(slot => new RamSlot(slot.SlotId, slot.GuestPhysicalAddress, (long)slot.SizeBytes))), options, log);
        if (serving is not null) new KvmPresync.Metrics.ReceiverMetrics(serving.Registry).Bind(service);
        using Socket listener = MigrationSocket.Listen(s.Listen);
        Console.WriteLine($"listening on {listener.LocalEndPoint} (guests up to {Units.FormatBytes(s.MaxMemory)}{(s.Once ? ", one migration" : $", {s.MaxSessions} at a time")}{(s.Tls is null ? "" : "; mutual TLS 1.3 required")})");
        if (libvirt is null && !trackWrites)
            Console.WriteLine($"note: writes to a destination's memory after a page landed are not tracked ({untracked}); the digest covers the pages as they landed");

        using var stopAccepting = new CancellationTokenSource();
        using var stopGuests = new CancellationTokenSource();
        int signals = 0;
        void OnSignal(PosixSignalContext ctx)
        {
            ctx.Cancel = true; // drain, then exit by ourselves
            if (Interlocked.Increment(ref signals) == 1)
            {
                SystemdNotify.Send("STOPPING=1");
                stopAccepting.Cancel();
                if (s.Once) stopGuests.Cancel();
            }
            else
            {
                log.Info("service.stopping_guests", null, ("signal", ctx.Signal));
                stopGuests.Cancel();
            }
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);

        var guests = new ResumedGuests(log, s.RunSeconds, stopGuests.Token);
        if (s.Once) return await OnceAsync(service, listener, guests, s, stopAccepting.Token);

        await using var jsonLines = s.Json is null ? null : new StreamWriter(s.Json, append: false) { AutoFlush = true };
        service.SessionEnded += ended =>
        {
            if (jsonLines is not null)
                lock (jsonLines) jsonLines.WriteLine(JsonSerializer.Serialize(new { session = ended.SessionId, peer = ended.Peer?.ToString(), result = ended.Result }, Json));
            if (ended.ResumedTarget is MachineMigrationTarget t) guests.Add(ended.SessionId, t);
            else if (ended.ResumedTarget is LibvirtRamTarget domain) HandedOver(log, ended.SessionId, domain);
        };
        SystemdNotify.Send($"READY=1\nSTATUS=listening on {listener.LocalEndPoint}");
        await service.RunAsync(listener, stopAccepting.Token);
        if (guests.Running > 0)
            log.Info("service.waiting_for_guests", null, ("guests", guests.Running),
                ("hint", s.RunSeconds is null ? "send SIGTERM again to stop them" : $"each stops {s.RunSeconds:0.#} s after it resumed"));
        return await guests.WaitAllAsync();
    }

    /// <summary>A libvirt destination's memory is its QEMU's now (libvirt runs the domain): drop this side's mapping and file name.</summary>
    private static void HandedOver(ServiceLog? log, string session, LibvirtRamTarget domain)
    {
        log?.Info("libvirt.running", session, ("domain", domain.DomainUuid?.ToString() ?? "?"));
        if (log is null) Console.WriteLine($"domain {domain.DomainUuid} runs here under libvirt");
        domain.Dispose();
    }

    private static async Task<int> OnceAsync(ReceiveService service, Socket listener, ResumedGuests guests, Settings s, CancellationToken stop)
    {
        SystemdNotify.Send($"READY=1\nSTATUS=waiting for one migration on {listener.LocalEndPoint}");
        var clock = Stopwatch.StartNew();
        ReceiveSessionEnded ended;
        try
        {
            ended = await service.RunOnceAsync(listener, stop);
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("kvmpresync: receive stopped before a migration arrived");
            return ExitCodes.MigrationFailed;
        }
        ReceiveResult result = ended.Result;
        if (s.Json is not null)
            await File.WriteAllTextAsync(s.Json, JsonSerializer.Serialize(result, JsonIndented));
        if (!result.Resumed)
        {
            Console.Error.WriteLine($"kvmpresync: receive failed: {result.Failure}");
            return ExitCodes.MigrationFailed;
        }
        Console.WriteLine($"guest resumed here after {clock.Elapsed.TotalSeconds:0.0} s: {result.PagesApplied} pages applied, memory digest verified, resume took {result.ResumeMs:0.0} ms");
        if (ended.ResumedTarget is LibvirtRamTarget domain)
        {
            HandedOver(null, ended.SessionId, domain);
            return ExitCodes.Ok;
        }
        guests.Add(ended.SessionId, (MachineMigrationTarget)ended.ResumedTarget!, console: true);
        return await guests.WaitAllAsync();
    }
}
