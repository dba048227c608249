using System.Net;
using System.Net.Sockets;
using KvmPresync.Engine;
using KvmPresync.Libvirt.Presync;
using KvmPresync.Libvirt.Testbed;
using KvmPresync.Migration;
using KvmPresync.Trace;
using KvmPresync.Wire;

namespace KvmPresync.Cli.Repro.Libvirt;

/// <summary>
/// Ours over libvirt (docs/LIBVIRT.md): the guest's QEMU runs with the preload tracker; the destination instance has
/// kvmpresync-libvirt-hook and a <see cref="LibvirtDestination"/> with a receiver on loopback; the source presyncs with
/// predict+slowstart for the sync period, launches, and libvirt moves only the device state. The link is loopback,
/// our stream paced at the link rate in-process, as QEMU paces its own in the stock modes.
/// Disposing removes the mode's working directory (hook wrapper, tracker copy, sockets).
/// </summary>
public sealed class PresyncMode : ILibvirtReproMode, IDisposable
{
    public const string ModeName = "presync+predict";
    private readonly string _dir;

    public PresyncMode()
    {
        _dir = Directory.CreateTempSubdirectory("kp-repro-presync-").FullName;
        HostProcesses.SetMode(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
            | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        string hook = Beside("kvmpresync-libvirt-hook"), tracker = Beside("libkvmpresync-track.so");
        File.Copy(tracker, TrackerPath);
        KvmPresync.Libvirt.Testbed.HookWrapper.Write(HookWrapperPath, hook, HookSocket);
    }

    public string Name => ModeName;

    private string HookWrapperPath => Path.Combine(_dir, "hook");
    private string HookSocket => Path.Combine(_dir, "hook.sock");
    private string TrackerPath => Path.Combine(_dir, "libkvmpresync-track.so");
    private string QmpDirectory => Path.Combine(_dir, "qmp");

    public (PrivateLibvirtDaemonOptions Source, PrivateLibvirtDaemonOptions Destination) TestbedOptions =>
        (new PrivateLibvirtDaemonOptions(), new PrivateLibvirtDaemonOptions { QemuHook = HookWrapperPath });

    /// <summary>The tracker in QEMU's environment, for the RAM file under any /dev/shm memory_backing_dir.</summary>
    public string EditGuestXml(string xml) => PresyncDomainXml.WithTracker(xml, TrackerPath, "/dev/shm/*/libvirt/qemu/*/pc.ram");

    public async Task<LibvirtModeOutcome> RunAsync(LibvirtReproContext context, CancellationToken ct)
    {
        if (context.Link.Kind != "loopback")
            return new LibvirtModeOutcome { Succeeded = false, Failure = $"{ModeName} over libvirt runs on --link-kind loopback only (this run: {context.Link.Kind})" };
        string ramDir = $"/dev/shm/kp-repro-ram-{Guid.NewGuid():N}";
        try
        {
            using LibvirtDestination destination = LibvirtDestination.Start(new LibvirtDestinationOptions
            {
                ConnectUri = context.Testbed.Destination.Uri,
                RamDirectory = ramDir,
                MemoryBackingDirectory = context.Testbed.Destination.MemoryBackingDirectory,
                HookSocket = HookSocket,
                QmpDirectory = QmpDirectory,
            });
            using Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
            using var key = new PreSharedKey(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
            var service = new ReceiveService(key, layout => Commands.LibvirtReceive.CreateTarget(destination, layout),
                new ReceiveServiceOptions { Receiver = new ReceiverOptions { DeviceStateHandover = true } }, new ServiceLog(_ => { }));
            service.SessionEnded += e => e.ResumedTarget?.Dispose();
            Task<ReceiveSessionEnded> received = service.RunOnceAsync(listener, ct);

            using LibvirtMigrationSource source = LibvirtMigrationSource.Open(context.Testbed.Source.Uri, context.Guest.Name, new LibvirtHandoverOptions
            {
                DestinationUri = context.Testbed.Destination.Uri,
                MigrateUri = context.Testbed.NewMigrationUri(),
                QmpDirectory = QmpDirectory,
                EditDestinationXml = context.Guest.DestinationXml,
            });
            var endpoint = (IPEndPoint)listener.LocalEndPoint!;
            using Socket socket = await MigrationSocket.ConnectAsync(endpoint, ct);
            var sender = new PresyncSender(source, socket, key, new PresyncOptions
            {
                Engine = new SyncEngineOptions { Policy = SyncPolicy.PredictSlowStart, LinkBitsPerSecond = context.Link.BitsPerSecond },
                RateLimitBitsPerSecond = context.Link.BitsPerSecond,
                Reconnect = new ReconnectOptions(c => MigrationSocket.ConnectAsync(endpoint, c)) { MaxOutage = TimeSpan.FromSeconds(10) },
            });
            source.SessionId = sender.SessionIdHex();
            context.Progress($"presync ({ModeName}) of {context.Guest.Name} for {context.SyncPeriod.TotalSeconds:0} s: QEMU pid {source.ProcessId}, " +
                             $"{Units.FormatBytes(source.Memory.SizeBytes)} tracked from outside");
            Task<MigrationResult> run = sender.RunAsync(ct);
            if (await Task.WhenAny(run, Task.Delay(context.SyncPeriod, ct)) != run)
            {
                context.Progress("launch: the destination QEMU starts, held until the memory is verified …");
                context.MarkLaunch();
                sender.Launch();
            }
            MigrationResult result = await run;
            ReceiveSessionEnded ended = await received.WaitAsync(TimeSpan.FromSeconds(30), ct);
            return new LibvirtModeOutcome
            {
                Succeeded = result.Succeeded && ended.Result.Resumed,
                Failure = result.Failure ?? ended.Result.Failure,
                DowntimeMs = result.Succeeded ? result.DowntimeMs : null,
                SyncBytes = result.SyncBytes,
                LaunchBytes = result.LaunchBytes,
                MemoryVerified = result.Verified && ended.Result.Verified,
                MigrateCallMs = context.MsSinceLaunch(),
                Presync = result,
            };
        }
        finally
        {
            try { Directory.Delete(ramDir, recursive: true); } catch (DirectoryNotFoundException) { }
        }
    }

    private static string Beside(string file)
    {
        string path = Path.Combine(AppContext.BaseDirectory, file);
        return KvmPresync.Core.NativeAssets.Find(file) ?? throw new FileNotFoundException($"{path} is missing: build it with `make -C native`", path);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}
