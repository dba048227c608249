using System.Diagnostics;
using System.Runtime.InteropServices;

namespace KvmPresync.Libvirt.Testbed;

/// <summary>
/// A private libvirt instance on this host (docs/LIBVIRT.md, "The testbed"): <c>virtlogd -d</c> and <c>libvirtd -d</c>
/// (no systemd here) in their own mount namespace, where <c>/run/libvirt</c>, <c>/etc/libvirt</c>,
/// <c>/var/lib/libvirt</c>, <c>/var/cache/libvirt</c> and <c>/var/log/libvirt</c> are bind mounts of fresh copies under
/// one temporary directory, with their own <c>host_uuid</c> (libvirt refuses to migrate to its own host UUID, so two
/// instances can migrate to each other), no cgroups, no domains and no hooks but <see cref="PrivateLibvirtDaemonOptions.QemuHook"/>.
/// Clients reach it at <see cref="Uri"/> (<c>qemu+unix:///system?socket=…</c>) from outside the namespace.
/// <para>
/// This handle owns the instance. <see cref="Dispose"/> destroys and undefines every domain it holds, kills QEMUs left
/// over and both daemons (their namespace, and with it every mount, goes with the last process) and deletes its
/// directory and its memory backing directory under /dev/shm: nothing is left behind but the empty <c>/run/libvirt</c>
/// mount point, which libvirt's packaging creates at boot anyway.
/// </para>
/// Needs root, <c>unshare</c> and the Debian packages libvirt-daemon-system, libvirt-clients and qemu-system-x86
/// (<see cref="Unavailable"/> says which is missing).
/// </summary>
public sealed class PrivateLibvirtDaemon : IDisposable
{
    private static readonly string[] s_trees = ["/etc/libvirt", "/var/lib/libvirt", "/var/cache/libvirt", "/var/log/libvirt"];
    private const string Libvirtd = "/usr/sbin/libvirtd";
    private const string Virtlogd = "/usr/sbin/virtlogd";

    /// <summary>The QEMU the instance's domains use (Debian's qemu-system-x86).</summary>
    public const string Emulator = "/usr/bin/qemu-system-x86_64";

    private const UnixFileMode ReadableByAll = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute; // 0755

    /// <summary>
    /// libvirt's probe of QEMU's capabilities (cache/qemu/capabilities/*.xml), taken from the first instance this
    /// process started and copied into every later one: a fresh instance otherwise probes QEMU on first use — 8 s under
    /// load here, inside whatever is being measured (a migration's Prepare). Kept in memory only.
    /// </summary>
    private static readonly Lock s_capabilitiesLock = new();
    private static Dictionary<string, byte[]>? s_capabilities;

    private readonly bool _ownsMemoryBackingDirectory;
    private bool _disposed;

    private PrivateLibvirtDaemon(string baseDirectory, PrivateLibvirtDaemonOptions options)
    {
        BaseDirectory = baseDirectory;
        Options = options;
        HostUuid = Guid.NewGuid();
        _ownsMemoryBackingDirectory = options.MemoryBackingDirectory is null;
        MemoryBackingDirectory = options.MemoryBackingDirectory ?? Path.Combine("/dev/shm", Path.GetFileName(baseDirectory));
    }

    public PrivateLibvirtDaemonOptions Options { get; }

    /// <summary>The temporary directory holding every tree the daemon writes.</summary>
    public string BaseDirectory { get; }

    /// <summary>What the instance sees as /run/libvirt (its socket, pidfiles, <c>qemu/NAME.pid</c>).</summary>
    public string RunDirectory => Path.Combine(BaseDirectory, "run");

    /// <summary>What the instance sees as /var/log/libvirt (libvirtd.log, <c>qemu/NAME.log</c>).</summary>
    public string LogDirectory => Path.Combine(BaseDirectory, "log");

    /// <summary>What the instance sees as /etc/libvirt (its hook is <c>hooks/qemu</c> here).</summary>
    public string ConfigDirectory => Path.Combine(BaseDirectory, "etc");

    /// <summary>The instance's <c>memory_backing_dir</c> (<see cref="PrivateLibvirtDaemonOptions.MemoryBackingDirectory"/>).</summary>
    public string MemoryBackingDirectory { get; }

    /// <summary>The instance's <c>host_uuid</c>, fresh for each instance.</summary>
    public Guid HostUuid { get; }

    /// <summary>The URI to open (<see cref="Connect"/>) from outside the instance's namespace.</summary>
    public string Uri => $"qemu+unix:///system?socket={RunDirectory}/libvirt-sock";

    public int LibvirtdPid { get; private set; }

    public int VirtlogdPid { get; private set; }

    /// <summary>Why a private libvirt daemon cannot run here (not root, a package missing), or null when it can.</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux()) return "Linux only";
        if (!HostProcesses.IsRoot) return "needs root (libvirtd qemu:///system, mount namespaces)";
        foreach (string f in new[] { Libvirtd, Virtlogd, Emulator, "/usr/bin/unshare", "/usr/bin/virsh" })
            if (!File.Exists(f))
                return $"{f} missing: install libvirt-daemon-system libvirt-clients qemu-system-x86 (tools/ensure-test-deps.sh)";
        if (!NativeLibrary.TryLoad("libvirt.so.0", out nint lib)) return "libvirt.so.0 missing: install libvirt0";
        NativeLibrary.Free(lib);
        return null;
    }

    /// <summary>
    /// Starts an instance and waits until libvirtd answers. Throws <see cref="TestbedUnavailableException"/> when this
    /// host cannot run one (<see cref="Unavailable"/>, or the kernel refuses a private mount namespace), and
    /// <see cref="InvalidOperationException"/> with the tail of the daemon's log when it does not come up.
    /// </summary>
    public static PrivateLibvirtDaemon Start(PrivateLibvirtDaemonOptions? options = null)
    {
        options ??= new PrivateLibvirtDaemonOptions();
        if (Unavailable() is { } why) throw new TestbedUnavailableException($"a private libvirt daemon cannot run here: {why}");
        if (options.QemuHook is { } hook && !File.Exists(hook)) throw new FileNotFoundException($"the qemu hook {hook} does not exist", hook);
        string dir = Directory.CreateTempSubdirectory("kp-libvirtd-").FullName;
        var daemon = new PrivateLibvirtDaemon(dir, options);
        try
        {
            daemon.Prepare();
            daemon.Launch();
            return daemon;
        }
        catch
        {
            daemon.Dispose();
            throw;
        }
    }

    /// <summary>Opens a new connection to the instance.</summary>
    public LibvirtConnection Connect() => LibvirtConnection.Open(Uri);

    /// <summary>Where libvirt keeps the pid of domain <paramref name="domainName"/>'s QEMU (as seen from outside).</summary>
    public string QemuPidFile(string domainName) => Path.Combine(RunDirectory, "qemu", domainName + ".pid");

    /// <summary>The pid of domain <paramref name="domainName"/>'s QEMU, or null when it does not run here.</summary>
    public int? QemuPid(string domainName) => HostProcesses.ReadPidFile(QemuPidFile(domainName)) is { } pid && HostProcesses.Alive(pid) ? pid : null;

    /// <summary>The QEMU log libvirt keeps for domain <paramref name="domainName"/> (its command line and stderr).</summary>
    public string QemuLogPath(string domainName) => Path.Combine(LogDirectory, "qemu", domainName + ".log");

    /// <summary>The last lines of the daemon's own log (warnings and errors).</summary>
    public string LogTail(int lines = 30) => Tail(Path.Combine(LogDirectory, "libvirtd.log"), lines);

    private void Prepare()
    {
        // libvirt-qemu must reach files the caller puts under the instance (a staged kernel, say): traverse only
        HostProcesses.SetMode(BaseDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        Directory.CreateDirectory(RunDirectory);
        foreach (string tree in s_trees)
        {
            string copy = Path.Combine(BaseDirectory, Leaf(tree));
            Directory.CreateDirectory(copy);
            HostProcesses.Run("cp", "-a", $"{tree}/.", copy); // owners and modes matter (libvirt-qemu reads its dirs)
        }
        // a fresh instance: no domain definitions, no autostart, no hook of the host's
        foreach (string xml in Directory.Exists(Path.Combine(ConfigDirectory, "qemu")) ? Directory.GetFiles(Path.Combine(ConfigDirectory, "qemu"), "*.xml") : [])
            File.Delete(xml);
        string autostart = Path.Combine(ConfigDirectory, "qemu", "autostart"), hooks = Path.Combine(ConfigDirectory, "hooks");
        if (Directory.Exists(autostart)) Directory.Delete(autostart, recursive: true);
        if (Directory.Exists(hooks)) Directory.Delete(hooks, recursive: true);
        Directory.CreateDirectory(hooks);
        if (Options.QemuHook is { } hook)
        {
            string installed = Path.Combine(hooks, "qemu");
            File.Copy(hook, installed);
            HostProcesses.SetMode(installed, ReadableByAll);
        }
        Directory.CreateDirectory(MemoryBackingDirectory);
        if (_ownsMemoryBackingDirectory) HostProcesses.SetMode(MemoryBackingDirectory, ReadableByAll);

        lock (s_capabilitiesLock)
        {
            if (s_capabilities is not null)
            {
                string cache = Directory.CreateDirectory(Path.Combine(BaseDirectory, "cache", "qemu", "capabilities")).FullName;
                foreach (var (file, bytes) in s_capabilities) File.WriteAllBytes(Path.Combine(cache, file), bytes);
            }
        }
        File.AppendAllText(Path.Combine(ConfigDirectory, "libvirtd.conf"),
            $"\n# PrivateLibvirtDaemon\nhost_uuid = \"{HostUuid}\"\nlog_outputs = \"3:file:/var/log/libvirt/libvirtd.log\"\n");
        // cgroup names are shared between instances (LIBVIRT-FACTS.md): no cgroups, so nothing to collide or leak there
        string qemuConf = $"\n# PrivateLibvirtDaemon\ncgroup_controllers = [ ]\nmemory_backing_dir = \"{MemoryBackingDirectory}\"\n";
        if (Options.PrivilegedQemu) qemuConf += "user = \"root\"\ngroup = \"root\"\nclear_emulator_capabilities = 0\n";
        File.AppendAllText(Path.Combine(ConfigDirectory, "qemu.conf"), qemuConf);
        // the bind mount needs its mount point; libvirt-daemon-system's tmpfiles.d creates it at boot, nothing here does
        Directory.CreateDirectory("/run/libvirt");
        string script = string.Join('\n',
            "set -e",
            $"mount --bind '{RunDirectory}' /run/libvirt",
            string.Join('\n', s_trees.Select(t => $"mount --bind '{Path.Combine(BaseDirectory, Leaf(t))}' {t}")),
            $"{Virtlogd} -d -p /run/libvirt/virtlogd.pid",
            $"{Libvirtd} -d -p /run/libvirt/libvirtd.pid",
            "");
        File.WriteAllText(Path.Combine(BaseDirectory, "start.sh"), script);
    }

    private void Launch()
    {
        string start = Path.Combine(BaseDirectory, "start.sh");
        var (rc, output) = Options.NetworkNamespace is { } ns
            ? HostProcesses.Run("ip", "netns", "exec", ns, "unshare", "-m", "--propagation", "private", "sh", start)
            : HostProcesses.Run("unshare", "-m", "--propagation", "private", "sh", start);
        if (rc != 0)
            throw new TestbedUnavailableException($"a private libvirt daemon needs a private mount namespace{(Options.NetworkNamespace is { } n ? $" in network namespace {n}" : "")}: starting it failed ({rc}): {output.Trim()}");
        string socket = Path.Combine(RunDirectory, "libvirt-sock");
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < Options.StartTimeout)
        {
            if (File.Exists(socket) && HostProcesses.ReadPidFile(Path.Combine(RunDirectory, "libvirtd.pid")) is { } l
                && HostProcesses.ReadPidFile(Path.Combine(RunDirectory, "virtlogd.pid")) is { } v)
            {
                LibvirtdPid = l;
                VirtlogdPid = v;
                try
                {
                    using var c = Connect(); // listening, not only bound
                }
                catch (LibvirtException)
                {
                    Thread.Sleep(50);
                    continue;
                }
                ProbeCapabilities();
                return;
            }
            Thread.Sleep(50);
        }
        throw new InvalidOperationException($"libvirtd did not listen on {socket} within {Options.StartTimeout.TotalSeconds:0} s; its log:\n{LogTail()}");
    }

    /// <summary>
    /// Stops libvirtd and starts it again in the same mount namespace (entered through virtlogd, which stays), as an
    /// operator's restart would: running QEMUs survive and the new daemon reconnects to them. Returns when it listens.
    /// </summary>
    public void RestartLibvirtd()
    {
        HostProcesses.Stop(LibvirtdPid, TimeSpan.FromSeconds(5));
        var (rc, output) = HostProcesses.Run("nsenter", "-t", VirtlogdPid.ToString(System.Globalization.CultureInfo.InvariantCulture), "-m",
            Libvirtd, "-d", "-p", "/run/libvirt/libvirtd.pid");
        if (rc != 0) throw new InvalidOperationException($"restarting libvirtd failed ({rc}): {output.Trim()}");
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < Options.StartTimeout)
        {
            if (HostProcesses.ReadPidFile(Path.Combine(RunDirectory, "libvirtd.pid")) is { } pid && pid != LibvirtdPid && HostProcesses.Alive(pid))
            {
                try
                {
                    using var c = Connect();
                    LibvirtdPid = pid;
                    return;
                }
                catch (LibvirtException) { }
            }
            Thread.Sleep(50);
        }
        throw new InvalidOperationException($"libvirtd did not listen again within {Options.StartTimeout.TotalSeconds:0} s of its restart; its log:\n{LogTail()}");
    }

    /// <summary>
    /// Has libvirtd probe QEMU's capabilities now (<c>virsh capabilities</c>; 43 ms when the copied cache is valid), so
    /// the first domain operation does not; the first instance's probe seeds the later ones (<see cref="s_capabilities"/>).
    /// </summary>
    private void ProbeCapabilities()
    {
        var (rc, output) = HostProcesses.Run("virsh", "-c", Uri, "capabilities");
        if (rc != 0) throw new InvalidOperationException($"libvirtd could not report its capabilities: {output.Trim()}\n{LogTail()}");
        string cache = Path.Combine(BaseDirectory, "cache", "qemu", "capabilities");
        lock (s_capabilitiesLock)
        {
            if (s_capabilities is null && Directory.Exists(cache))
                s_capabilities = Directory.GetFiles(cache, "*.xml").ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (LibvirtdPid != 0 && HostProcesses.Alive(LibvirtdPid)) RemoveDomains();
        }
        finally
        {
            // QEMUs outlive libvirtd: kill any the daemon still lists, then the daemons
            string qemuRun = Path.Combine(RunDirectory, "qemu");
            foreach (string pidFile in Directory.Exists(qemuRun) ? Directory.GetFiles(qemuRun, "*.pid") : [])
                if (HostProcesses.ReadPidFile(pidFile) is { } q) HostProcesses.Stop(q, TimeSpan.Zero);
            if (LibvirtdPid != 0) HostProcesses.Stop(LibvirtdPid, TimeSpan.FromSeconds(5));
            if (VirtlogdPid != 0) HostProcesses.Stop(VirtlogdPid, TimeSpan.FromSeconds(5));
            // the mount namespace (and its bind mounts) ended with its last process
            Delete(BaseDirectory);
            if (_ownsMemoryBackingDirectory) Delete(MemoryBackingDirectory);
        }
    }

    private void RemoveDomains()
    {
        var (_, names) = HostProcesses.Run("virsh", "-c", Uri, "list", "--all", "--name");
        foreach (string name in names.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            HostProcesses.Run("virsh", "-c", Uri, "destroy", name);
            HostProcesses.Run("virsh", "-c", Uri, "undefine", name);
        }
    }

    private static void Delete(string directory)
    {
        if (!Directory.Exists(directory)) return;
        try { Directory.Delete(directory, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { HostProcesses.Run("rm", "-rf", directory); }
    }

    private static string Leaf(string tree) => tree switch
    {
        "/etc/libvirt" => "etc",
        "/var/lib/libvirt" => "lib",
        "/var/cache/libvirt" => "cache",
        "/var/log/libvirt" => "log",
        _ => throw new ArgumentOutOfRangeException(nameof(tree)),
    };

    internal static string Tail(string path, int lines = 30)
    {
        try { return string.Join('\n', File.ReadLines(path).TakeLast(lines)); }
        catch (IOException) { return "(no log)"; }
    }
}

/// <summary>This host cannot run the testbed (not root, a package missing, no private mount namespace); the message says which.</summary>
public sealed class TestbedUnavailableException(string message) : Exception(message);
