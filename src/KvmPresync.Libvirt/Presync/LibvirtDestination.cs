using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using KvmPresync.Libvirt.Interop;
using KvmPresync.Memory;

namespace KvmPresync.Libvirt.Presync;

/// <summary>
/// The destination host's libvirt presync service (docs/LIBVIRT.md, "The destination"): creates each session's RAM file
/// (<see cref="CreateTarget"/>), and answers the libvirt hook (native/libvirt-hook) on <see cref="LibvirtDestinationOptions.HookSocket"/>:
/// <list type="bullet">
/// <item><c>start SESSION UUID ID</c>: hard-links the session's RAM file as <c>pc.ram</c> into the directory libvirt made
/// for that QEMU's memory (<c>memory_backing_dir/libvirt/qemu/ID-NAME/</c>), owned like it, so QEMU opens the
/// pre-synchronized RAM instead of a new file;</item>
/// <item><c>started SESSION UUID ID</c>: QEMU runs, incoming; holds the answer until the receiver verified the memory
/// (the target's Resume) or the session failed; on success sets x-ignore-shared through the QEMU's extra monitor first.</item>
/// </list>
/// One instance per receiver; it owns the hook socket and a connection to the local libvirt.
/// </summary>
public sealed class LibvirtDestination : IDisposable
{
    private readonly ConcurrentDictionary<string, LibvirtRamTarget> _sessions = new(StringComparer.OrdinalIgnoreCase);
    private readonly Socket _listener;
    private readonly LibvirtConnection _libvirt;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly string _memoryBackingDirectory;
    private readonly Action<string>? _log;

    private LibvirtDestination(LibvirtDestinationOptions options, Socket listener, LibvirtConnection libvirt, string memoryBackingDirectory, Action<string>? log)
    {
        Options = options;
        _listener = listener;
        _libvirt = libvirt;
        _memoryBackingDirectory = memoryBackingDirectory;
        _log = log;
        _accepting = Task.Run(AcceptAsync);
    }

    public LibvirtDestinationOptions Options { get; }

    /// <summary>Where libvirt puts each QEMU's memory directory.</summary>
    public string MemoryBackingDirectory => _memoryBackingDirectory;

    /// <summary>Prepares the directories, connects to the local libvirt and listens for the hook.</summary>
    public static LibvirtDestination Start(LibvirtDestinationOptions options, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("libvirt presync destinations run on Linux");
        Directory.CreateDirectory(options.RamDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        PrepareQmpDirectory(options.QmpDirectory);
        Directory.CreateDirectory(Path.GetDirectoryName(options.HookSocket)!);
        LibvirtConnection libvirt = LibvirtConnection.Open(options.ConnectUri);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            if (File.Exists(options.HookSocket)) File.Delete(options.HookSocket); // a previous receiver's (only one may serve a host)
            listener.Bind(new UnixDomainSocketEndPoint(options.HookSocket));
            File.SetUnixFileMode(options.HookSocket, UnixFileMode.UserRead | UnixFileMode.UserWrite); // the hook runs as root
            listener.Listen(16);
            return new LibvirtDestination(options, listener, libvirt, options.ResolveMemoryBackingDirectory(), log);
        }
        catch
        {
            listener.Dispose();
            libvirt.Dispose();
            throw;
        }
    }

    /// <summary>A session's destination: a new RAM file of <paramref name="bytes"/> bytes, mapped here.</summary>
    public LibvirtRamTarget CreateTarget(long bytes)
    {
        string path = Path.Combine(Options.RamDirectory, $"{Guid.NewGuid():N}.ram");
        GuestMemory ram = GuestMemory.MapFile(path, bytes, create: true);
        KvmPresync.Core.JitWarmup.Prepare(typeof(LibvirtRamTarget), typeof(LibvirtDestination), typeof(HandoverDescriptor)); // the switchover's code, compiled now
        _ = HandoverDescriptor.Parse(new HandoverDescriptor(Guid.Empty, "warm-up", 0).ToBytes()); // and the JSON (de)serializer's
        return new LibvirtRamTarget(this, path, ram);
    }

    internal void Register(string session, LibvirtRamTarget target)
    {
        if (!_sessions.TryAdd(session, target))
            throw new InvalidOperationException($"presync session {session} already has a destination on this receiver");
    }

    internal void Unregister(string session, LibvirtRamTarget target) => _sessions.TryRemove(new KeyValuePair<string, LibvirtRamTarget>(session, target));

    /// <summary>Polls the local libvirt until domain <paramref name="uuid"/> runs (after the hook released it).</summary>
    internal void WaitRunning(Guid uuid, string name)
    {
        var watch = Stopwatch.StartNew();
        string last = "not defined yet";
        while (watch.Elapsed < Options.RunTimeout)
        {
            try
            {
                using LibvirtDomain d = _libvirt.LookupDomain(uuid);
                (DomainState state, _) = d.GetState();
                if (state == DomainState.Running) return;
                last = state.ToString();
                if (state is DomainState.Shutoff or DomainState.Crashed)
                    throw new InvalidOperationException($"destination domain {name} is {state} after the device state was released: QEMU failed to load it (see the destination's libvirt and QEMU logs)");
            }
            catch (LibvirtException e) when (e.Code == ErrorCodes.NoDomain)
            {
                last = "gone";
            }
            Thread.Sleep(1);
        }
        throw new TimeoutException($"destination domain {name} did not run within {Options.RunTimeout.TotalSeconds:0} s of its release (last state: {last})");
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    /// <summary>One hook call: one request line, one answer line. Never throws: a bad request gets "fail …".</summary>
    private async Task ServeAsync(Socket client)
    {
        using (client)
        {
            string answer;
            try
            {
                using var stream = new NetworkStream(client, ownsSocket: false);
                using var reader = new StreamReader(stream, Encoding.ASCII);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                string line = await reader.ReadLineAsync(timeout.Token).ConfigureAwait(false) ?? "";
                answer = await AnswerAsync(line).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                answer = $"fail {e.GetType().Name}: {e.Message}";
            }
            _log?.Invoke($"libvirt hook: {answer}");
            try { await client.SendAsync(Encoding.UTF8.GetBytes(answer.ReplaceLineEndings(" ") + "\n")).ConfigureAwait(false); }
            catch (SocketException) { } // the hook was killed; libvirt sees its exit
        }
    }

    private async Task<string> AnswerAsync(string line)
    {
        string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (f.Length != 4 || (f[0] != "start" && f[0] != "started") || !Guid.TryParse(f[2], out Guid uuid) || !int.TryParse(f[3], out int id) || id <= 0)
            return $"fail malformed hook request '{Truncate(line)}' (expected: start|started SESSION UUID ID)";
        if (!_sessions.TryGetValue(f[1], out LibvirtRamTarget? target))
            return $"fail no presync session {Truncate(f[1])} on this receiver (it ended, failed, or went to another host): refusing to start the destination without its memory";
        if (f[0] == "start") return LinkRam(target, uuid, id);
        return await HoldAsync(target, uuid).ConfigureAwait(false);
    }

    private string LinkRam(LibvirtRamTarget target, Guid uuid, int id)
    {
        target.DomainUuid = uuid;
        string root = Path.Combine(_memoryBackingDirectory, "libvirt", "qemu");
        string[] dirs = Directory.Exists(root) ? Directory.GetDirectories(root, $"{id}-*") : [];
        if (dirs.Length != 1)
        {
            var e = new InvalidOperationException($"found {dirs.Length} memory directories {root}/{id}-* for the starting QEMU (is memory_backing_dir {_memoryBackingDirectory}? set --memory-backing-dir)");
            target.FailStart(e);
            return "fail " + e.Message;
        }
        string ram = Path.Combine(dirs[0], "pc.ram");
        if (FileNative.Link(target.RamPath, ram) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            var e = new IOException($"link({target.RamPath}, {ram}) failed: errno {errno}" + (errno == 18
                ? $" (EXDEV: --ram-dir {Options.RamDirectory} must be on the filesystem of memory_backing_dir {_memoryBackingDirectory})" : ""));
            target.FailStart(e);
            return "fail " + e.Message;
        }
        (uint uid, uint gid) = OwnerOf(dirs[0]);
        if (FileNative.Chown(ram, uid, gid) != 0)
            return $"fail chown {ram} to {uid}:{gid}: errno {Marshal.GetLastPInvokeError()}";
        return "ok";
    }

    /// <summary>
    /// "started": QEMU runs, incoming. x-ignore-shared goes on at once (the source cannot connect before this hook returns),
    /// then the destination is reported ready and the answer waits for the verdict: the memory verified, or not.
    /// </summary>
    private async Task<string> HoldAsync(LibvirtRamTarget target, Guid uuid)
    {
        target.DomainUuid = uuid;
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            using QmpSocket qmp = await QmpSocket.ConnectAsync(PresyncDomainXml.QmpSocketPath(Options.QmpDirectory, uuid), cts.Token).ConfigureAwait(false);
            await qmp.SetMigrationCapabilityAsync("x-ignore-shared", true, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or OperationCanceledException or System.Text.Json.JsonException)
        {
            var why = new InvalidOperationException($"setting x-ignore-shared on the destination QEMU failed: {e.Message}", e);
            target.FailStart(why);
            target.MarkReleased(why);
            return "fail " + why.Message;
        }
        target.MarkReady();
        Task<string?> verdict = target.Verdict;
        if (await Task.WhenAny(verdict, Task.Delay(Options.HoldTimeout, _stop.Token)).ConfigureAwait(false) != verdict)
        {
            var e = new TimeoutException($"the memory was not verified within {Options.HoldTimeout.TotalSeconds:0} s of the destination's start");
            target.MarkReleased(e);
            return "fail " + e.Message;
        }
        if (await verdict.ConfigureAwait(false) is { } reason)
        {
            target.MarkReleased(new InvalidOperationException(reason));
            return "fail " + reason;
        }
        target.MarkReleased(null);
        return "ok";
    }

    private static (uint Uid, uint Gid) OwnerOf(string path)
    {
        var psi = new ProcessStartInfo("stat", ["-c", "%u %g", path]) { RedirectStandardOutput = true };
        using Process p = Process.Start(psi)!;
        string[] ids = p.StandardOutput.ReadToEnd().Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        p.WaitForExit();
        return (uint.Parse(ids[0]), uint.Parse(ids[1]));
    }

    /// <summary>The extra monitor's directory: QEMU (user libvirt-qemu) creates its socket there.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static void PrepareQmpDirectory(string dir)
    {
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead |
            UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute | UnixFileMode.StickyBit);
    }

    private static string Truncate(string s) => s.Length <= 80 ? s : s[..80] + "…";

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        try { _accepting.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
        try { File.Delete(Options.HookSocket); } catch (IOException) { }
        foreach (LibvirtRamTarget t in _sessions.Values) t.Dispose();
        _libvirt.Dispose();
        _stop.Dispose();
    }
}
