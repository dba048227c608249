using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using KvmPresync.Libvirt;

namespace KvmPresync.Tests.Libvirt;

/// <summary>
/// A private libvirtd for one test (docs/LIBVIRT.md): <c>virtlogd -d</c> and <c>libvirtd -d</c> (no systemd here) in
/// their own mount namespace, where <c>/run/libvirt</c>, <c>/etc/libvirt</c>, <c>/var/lib/libvirt</c>,
/// <c>/var/cache/libvirt</c> and <c>/var/log/libvirt</c> are bind mounts of fresh copies under one temporary directory,
/// with their own <c>host_uuid</c> (so two instances can migrate to each other) and no cgroups. Clients reach it at
/// <see cref="Uri"/> (<c>qemu+unix:///system?socket=…</c>) from outside the namespace.
/// Dispose destroys and undefines every domain it holds, kills leftover QEMUs and both daemons (their namespace, and
/// with it every mount, goes with the last process) and deletes the directory.
/// </summary>
internal sealed partial class LibvirtDaemon : IDisposable
{
    private static readonly string[] s_trees = ["/etc/libvirt", "/var/lib/libvirt", "/var/cache/libvirt", "/var/log/libvirt"];
    private const string Libvirtd = "/usr/sbin/libvirtd";
    private const string Virtlogd = "/usr/sbin/virtlogd";
    private const string Emulator = "/usr/bin/qemu-system-x86_64";
    private bool _disposed;

    private LibvirtDaemon(string baseDirectory, Guid hostUuid)
    {
        BaseDirectory = baseDirectory;
        HostUuid = hostUuid;
    }

    /// <summary>The temporary directory holding every tree the daemon writes.</summary>
    public string BaseDirectory { get; }

    /// <summary>What the daemon sees as /run/libvirt.</summary>
    public string RunDirectory => Path.Combine(BaseDirectory, "run");

    /// <summary>What the daemon sees as /var/log/libvirt.</summary>
    public string LogDirectory => Path.Combine(BaseDirectory, "log");

    public Guid HostUuid { get; }

    public string Uri => $"qemu+unix:///system?socket={RunDirectory}/libvirt-sock";

    public int LibvirtdPid { get; private set; }

    public int VirtlogdPid { get; private set; }

    /// <summary>Why a libvirt daemon cannot run here, or null when it can (root, the packages, unshare).</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux()) return "Linux only";
        if (geteuid() != 0) return "needs root (libvirtd qemu:///system, mount namespaces)";
        foreach (string f in new[] { Libvirtd, Virtlogd, Emulator, "/usr/bin/unshare", "/usr/bin/virsh" })
            if (!File.Exists(f))
                return $"{f} missing: install libvirt-daemon-system libvirt-clients qemu-system-x86 (tools/ensure-test-deps.sh)";
        if (!NativeLibrary.TryLoad("libvirt.so.0", out nint lib)) return "libvirt.so.0 missing: install libvirt0";
        NativeLibrary.Free(lib);
        return null;
    }

    /// <summary>Starts a daemon or skips the test with the reason it cannot run here.</summary>
    public static LibvirtDaemon StartOrSkip()
    {
        string? why = Unavailable();
        if (why is not null) Assert.Skip($"needs a libvirt daemon: {why}");
        return Start();
    }

    private static LibvirtDaemon Start()
    {
        string dir = Directory.CreateTempSubdirectory("kp-libvirtd-").FullName;
        var daemon = new LibvirtDaemon(dir, Guid.NewGuid());
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

    private void Prepare()
    {
        Directory.CreateDirectory(RunDirectory);
        foreach (string tree in s_trees)
        {
            string copy = Path.Combine(BaseDirectory, Leaf(tree));
            Directory.CreateDirectory(copy);
            Run("cp", "-a", $"{tree}/.", copy); // owners and modes matter (libvirt-qemu reads its dirs)
        }
        string etc = Path.Combine(BaseDirectory, "etc");
        File.AppendAllText(Path.Combine(etc, "libvirtd.conf"),
            $"\n# LibvirtDaemon (tests)\nhost_uuid = \"{HostUuid}\"\nlog_outputs = \"3:file:/var/log/libvirt/libvirtd.log\"\n");
        // cgroup names are shared between instances (LIBVIRT-FACTS.md): no cgroups, so nothing to collide or leak there
        File.AppendAllText(Path.Combine(etc, "qemu.conf"), "\n# LibvirtDaemon (tests)\ncgroup_controllers = [ ]\n");
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
        var (rc, output) = Run("unshare", "-m", "--propagation", "private", "sh", Path.Combine(BaseDirectory, "start.sh"));
        if (rc != 0)
            Assert.Skip($"needs a private mount namespace for libvirtd: unshare -m failed ({rc}): {output.Trim()}");
        string socket = Path.Combine(RunDirectory, "libvirt-sock");
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(20))
        {
            if (File.Exists(socket) && TryReadPid("libvirtd.pid", out int l) && TryReadPid("virtlogd.pid", out int v))
            {
                LibvirtdPid = l;
                VirtlogdPid = v;
                try
                {
                    using var c = LibvirtConnection.Open(Uri); // listening, not only bound
                    return;
                }
                catch (LibvirtException) { }
            }
            Thread.Sleep(50);
        }
        throw new InvalidOperationException($"libvirtd did not listen on {socket} within 20 s; its log:\n{Tail(Path.Combine(LogDirectory, "libvirtd.log"))}");
    }

    public LibvirtConnection Connect() => LibvirtConnection.Open(Uri);

    /// <summary>A small TCG domain: no disk, no display, nothing to boot (SeaBIOS finds no device); start it paused.</summary>
    public static string TestDomainXml(string name, int memoryMiB = 64) => $"""
        <domain type='qemu'>
          <name>{name}</name>
          <memory unit='MiB'>{memoryMiB}</memory>
          <vcpu>1</vcpu>
          <os><type arch='x86_64' machine='pc'>hvm</type></os>
          <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
          <devices>
            <emulator>{Emulator}</emulator>
            <video><model type='none'/></video>
            <memballoon model='none'/>
          </devices>
        </domain>
        """;

    public static string NewDomainName() => $"kp-test-{Guid.NewGuid():N}"[..20];

    /// <summary>A TCP port free right now on 127.0.0.1, for QEMU's migration stream.</summary>
    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (LibvirtdPid != 0 && Alive(LibvirtdPid)) RemoveDomains();
        }
        finally
        {
            // QEMUs outlive libvirtd: kill any the daemon still lists, then the daemons
            foreach (string pidFile in Directory.Exists(Path.Combine(RunDirectory, "qemu")) ? Directory.GetFiles(Path.Combine(RunDirectory, "qemu"), "*.pid") : [])
                if (int.TryParse(File.ReadAllText(pidFile).Trim(), out int q)) Stop(q, TimeSpan.Zero);
            if (LibvirtdPid != 0) Stop(LibvirtdPid, TimeSpan.FromSeconds(5));
            if (VirtlogdPid != 0) Stop(VirtlogdPid, TimeSpan.FromSeconds(5));
            // the mount namespace (and its bind mounts) ended with its last process
            try { Directory.Delete(BaseDirectory, recursive: true); } catch (IOException) { Run("rm", "-rf", BaseDirectory); }
        }
    }

    private void RemoveDomains()
    {
        var (_, names) = Run("virsh", "-c", Uri, "list", "--all", "--name");
        foreach (string name in names.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            Run("virsh", "-c", Uri, "destroy", name);
            Run("virsh", "-c", Uri, "undefine", name);
        }
    }

    private static void Stop(int pid, TimeSpan grace)
    {
        if (!Alive(pid)) return;
        kill(pid, grace > TimeSpan.Zero ? 15 : 9);
        var watch = Stopwatch.StartNew();
        while (Alive(pid) && watch.Elapsed < grace) Thread.Sleep(20);
        if (Alive(pid)) kill(pid, 9);
        watch.Restart();
        while (Alive(pid) && watch.Elapsed < TimeSpan.FromSeconds(5)) Thread.Sleep(20);
    }

    /// <summary>Running (a zombie waiting for its reaper counts as gone).</summary>
    internal static bool Alive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close > 0 && stat.Length > close + 2 && stat[close + 2] != 'Z';
        }
        catch (IOException) { return false; }
    }

    private bool TryReadPid(string file, out int pid)
    {
        pid = 0;
        string path = Path.Combine(RunDirectory, file);
        try { return File.Exists(path) && int.TryParse(File.ReadAllText(path).Trim(), out pid) && pid > 0; }
        catch (IOException) { return false; }
    }

    private static string Leaf(string tree) => tree switch
    {
        "/etc/libvirt" => "etc",
        "/var/lib/libvirt" => "lib",
        "/var/cache/libvirt" => "cache",
        "/var/log/libvirt" => "log",
        _ => throw new ArgumentOutOfRangeException(nameof(tree)),
    };

    private static string Tail(string path)
    {
        try { return string.Join('\n', File.ReadLines(path).TakeLast(30)); }
        catch (IOException) { return "(no log)"; }
    }

    internal static (int ExitCode, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        Task<string> err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int kill(int pid, int sig);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint geteuid();
}
