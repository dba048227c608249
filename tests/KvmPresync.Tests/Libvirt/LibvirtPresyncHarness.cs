using System.Net;
using System.Net.Sockets;
using KvmPresync.Engine;
using KvmPresync.Libvirt;
using KvmPresync.Libvirt.Guest;
using KvmPresync.Libvirt.Presync;
using KvmPresync.Libvirt.Testbed;
using KvmPresync.Migration;
using KvmPresync.Tests.LinuxGuest;
using KvmPresync.Tests.Migration;
using KvmPresync.Tests.ProcessMemory;
using KvmPresync.Trace;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Libvirt;

/// <summary>
/// One libvirt presync set-up for a test, all real: two private libvirt instances (the destination with
/// kvmpresync-libvirt-hook installed), a Linux guest domain running a workload on the source (RAM in a shared file under
/// the instance's memory_backing_dir, the preload tracker in its QEMU, heartbeats to a console file), and on the
/// destination side a <see cref="LibvirtDestination"/> plus a <see cref="ReceiveService"/> on loopback. The guest is a
/// <see cref="LinuxGuestDomain"/>, whose destination XML writes the console to a second file, so heartbeats there were
/// written by the destination. Dispose tears all down and removes every file and directory it made.
/// </summary>
internal sealed class LibvirtPresyncHarness : IAsyncDisposable
{
    private readonly List<LibvirtRamTarget> _targets = [];
    private readonly List<string> _log = [];

    private LibvirtPresyncHarness(string dir, string ramDir, LibvirtTestbed testbed)
    {
        Directory = dir;
        RamDirectory = ramDir;
        Testbed = testbed;
    }

    public string Directory { get; }
    public string RamDirectory { get; }
    public LibvirtTestbed Testbed { get; }
    public LibvirtDestination Destination { get; private set; } = null!;
    public ReceiveService Service { get; private set; } = null!;
    public Socket Listener { get; private set; } = null!;
    /// <summary>The fresh guest (<see cref="LinuxGuestDomain"/>: staged image, both console files, the heartbeat chain).</summary>
    public LinuxGuestDomain Guest { get; private set; } = null!;
    public string Name => Guest.Name;
    public string DestinationConsole => Guest.DestinationConsolePath;
    public LinuxGuestConsole Console => Guest.Console;
    public PreSharedKey Key { get; } = MigrationHarness.Key(5);
    public string QmpDirectory => Path.Combine(Directory, "qmp");
    public IReadOnlyList<LibvirtRamTarget> Targets { get { lock (_targets) return [.. _targets]; } }
    public string Log { get { lock (_log) return string.Join('\n', _log); } }

    /// <summary>Starts everything, boots the guest and waits for its workload's heartbeats; skips where libvirt, root or the image are missing.</summary>
    public static async Task<LibvirtPresyncHarness> StartOrSkipAsync(string workload, CancellationToken ct, bool hook = true)
    {
        if (PrivateLibvirtDaemon.Unavailable() is { } why) Assert.Skip($"needs a libvirt daemon: {why}");
        string image = LinuxGuestImage.DirectoryOrSkip();
        string hookBinary = ProcessTrackingRequirement.NativeOrFail("kvmpresync-libvirt-hook");
        string tracker = ProcessTrackingRequirement.NativeOrFail("libkvmpresync-track.so");
        string dir = System.IO.Directory.CreateTempSubdirectory("kp-lvpresync-").FullName;
        HostProcesses.SetMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
            | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        string ramDir = $"/dev/shm/kp-lvpresync-ram-{Guid.NewGuid():N}";
        string wrapper = Path.Combine(dir, "hook");
        if (hook) HookWrapper.Write(wrapper, hookBinary, Path.Combine(dir, "hook.sock"));
        else
        {
            File.WriteAllText(wrapper, "#!/bin/sh\ncat >/dev/null\nexit 0\n"); // a destination without the presync hook
            HostProcesses.SetMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        LibvirtTestbed testbed;
        try
        {
            testbed = LibvirtTestbed.Start(destination: new PrivateLibvirtDaemonOptions { QemuHook = wrapper });
        }
        catch (TestbedUnavailableException e)
        {
            System.IO.Directory.Delete(dir, recursive: true);
            Assert.Skip($"needs a libvirt daemon: {e.Message}");
            throw;
        }
        var h = new LibvirtPresyncHarness(dir, ramDir, testbed);
        try
        {
            h.StartReceiver();
            string trackerCopy = Path.Combine(dir, "libkvmpresync-track.so"); // where libvirt-qemu can read it
            File.Copy(tracker, trackerCopy);
            h.Guest = LinuxGuestDomain.Start(testbed, image, workload, seed: 3, editXml: xml =>
                PresyncDomainXml.WithTracker(xml, trackerCopy, $"{testbed.Source.MemoryBackingDirectory}/libvirt/qemu/*/pc.ram"));
            await h.WaitAsync(c => c.ReadyLine is not null && c.Heartbeats.Count >= 5, TimeSpan.FromSeconds(90), "the guest's workload heartbeats", ct);
            return h;
        }
        catch
        {
            await h.DisposeAsync();
            throw;
        }
    }

    private void StartReceiver()
    {
        Destination = LibvirtDestination.Start(new LibvirtDestinationOptions
        {
            ConnectUri = Testbed.Destination.Uri,
            RamDirectory = RamDirectory,
            MemoryBackingDirectory = Testbed.Destination.MemoryBackingDirectory,
            HookSocket = Path.Combine(Directory, "hook.sock"),
            QmpDirectory = QmpDirectory,
        }, line => { lock (_log) _log.Add(line); });
        Listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        Service = new ReceiveService(Key, layout =>
        {
            LibvirtRamTarget t = Destination.CreateTarget((long)layout.TotalBytes);
            lock (_targets) _targets.Add(t);
            return t;
        }, new ReceiveServiceOptions { Receiver = new ReceiverOptions { DeviceStateHandover = true } },
            new ServiceLog(line => { lock (_log) _log.Add(line); }));
        Service.SessionEnded += e => e.ResumedTarget?.Dispose();
    }

    public LibvirtMigrationSource OpenSource() => LibvirtMigrationSource.Open(Testbed.Source.Uri, Name, new LibvirtHandoverOptions
    {
        DestinationUri = Testbed.Destination.Uri,
        MigrateUri = Testbed.NewMigrationUri(),
        QmpDirectory = QmpDirectory,
        EditDestinationXml = Guest.DestinationXml,
    });

    public Task<ReceiveSessionEnded> ReceiveOnceAsync(CancellationToken ct) => Service.RunOnceAsync(Listener, ct);

    public IPEndPoint Endpoint => (IPEndPoint)Listener.LocalEndPoint!;

    public PresyncOptions Options(TimeSpan? reconnectFor = null) => new()
    {
        Engine = new SyncEngineOptions { Policy = SyncPolicy.PredictSlowStart, LinkBitsPerSecond = 1e9 },
        RateLimitBitsPerSecond = 1e9,
        Reconnect = new ReconnectOptions(c => MigrationSocket.ConnectAsync(Endpoint, c))
        {
            LivenessTimeout = TimeSpan.FromSeconds(2),
            MaxOutage = reconnectFor ?? TimeSpan.FromSeconds(20),
            InitialBackoff = TimeSpan.FromMilliseconds(50),
            MaxBackoff = TimeSpan.FromMilliseconds(400),
        },
    };

    /// <summary>Presyncs, launches after <paramref name="launchAfter"/> (or when <paramref name="launch"/> completes), returns the result.</summary>
    public async Task<MigrationResult> PresyncAsync(LibvirtMigrationSource source, TimeSpan launchAfter, CancellationToken ct,
        TimeSpan? reconnectFor = null, Func<Task>? duringSync = null, Action<PresyncSender>? prepare = null)
    {
        using Socket socket = await MigrationSocket.ConnectAsync(Endpoint, ct);
        var sender = new PresyncSender(source, socket, Key, Options(reconnectFor));
        source.SessionId = sender.SessionIdHex();
        prepare?.Invoke(sender);
        Task<MigrationResult> run = sender.RunAsync(ct);
        if (duringSync is not null) await duringSync();
        Task done = await Task.WhenAny(run, Task.Delay(launchAfter, ct));
        if (done != run) sender.Launch();
        return await run.WaitAsync(TimeSpan.FromMinutes(2), ct);
    }

    public void PollConsole() => Guest.PollConsole();

    /// <summary><see cref="LinuxGuestDomain.WaitAsync"/>, failing the test (with the receiver's log) instead of throwing.</summary>
    public async Task WaitAsync(Func<LinuxGuestConsole, bool> done, TimeSpan timeout, string what, CancellationToken ct, bool sourceMayStop = false)
    {
        try
        {
            await Guest.WaitAsync(done, timeout, what, sourceMayStop, cancellationToken: ct);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            Assert.Fail($"{e.Message}\n{Log}");
        }
    }

    public int HeartbeatsFrom(string file) => Console.Arrivals.Count(a => a.File == file);

    public DomainState? State(PrivateLibvirtDaemon daemon)
    {
        try
        {
            using LibvirtConnection c = daemon.Connect();
            using LibvirtDomain d = c.LookupDomain(Name);
            return d.State;
        }
        catch (LibvirtException e) when (e.Code == ErrorCodes.NoDomain)
        {
            return null;
        }
    }

    /// <summary>Whether the source QEMU still has x-ignore-shared set (it must not, after a failed presync).</summary>
    public bool SourceIgnoresShared()
    {
        using LibvirtConnection c = Testbed.Source.Connect();
        using LibvirtDomain d = c.LookupDomain(Name);
        using var reply = System.Text.Json.JsonDocument.Parse(d.QemuMonitorCommand("{\"execute\":\"query-migrate-capabilities\"}"));
        return reply.RootElement.GetProperty("return").EnumerateArray()
            .Single(e => e.GetProperty("capability").GetString() == "x-ignore-shared").GetProperty("state").GetBoolean();
    }

    /// <summary>No RAM file left in the receiver's directory.</summary>
    public void AssertNoRamFilesLeft() =>
        Assert.True(!System.IO.Directory.Exists(RamDirectory) || System.IO.Directory.GetFiles(RamDirectory).Length == 0,
            $"RAM files left in {RamDirectory}: {string.Join(", ", System.IO.Directory.Exists(RamDirectory) ? System.IO.Directory.GetFiles(RamDirectory) : [])}");

    public async ValueTask DisposeAsync()
    {
        try { Listener?.Dispose(); } catch (ObjectDisposedException) { }
        foreach (LibvirtRamTarget t in Targets) t.Dispose();
        Destination?.Dispose();
        Guest?.Dispose();
        Testbed.Dispose();
        try { System.IO.Directory.Delete(RamDirectory, recursive: true); } catch (DirectoryNotFoundException) { }
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (DirectoryNotFoundException) { }
        await Task.CompletedTask;
    }
}
