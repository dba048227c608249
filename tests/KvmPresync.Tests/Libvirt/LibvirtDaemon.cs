using KvmPresync.Libvirt.Testbed;

namespace KvmPresync.Tests.Libvirt;

/// <summary>
/// The tests' way to the testbed (src/KvmPresync.Libvirt/Testbed, docs/LIBVIRT.md): a private libvirt instance or a
/// pair of them per test, or the test skips with the reason this host cannot run one (not root, a package missing,
/// no private mount namespace). Everything else is <see cref="PrivateLibvirtDaemon"/>'s.
/// </summary>
internal static class LibvirtDaemon
{
    /// <summary>Why a libvirt daemon cannot run here, or null when it can.</summary>
    public static string? Unavailable() => PrivateLibvirtDaemon.Unavailable();

    /// <summary>Starts a private instance or skips the test with the reason it cannot run here.</summary>
    public static PrivateLibvirtDaemon StartOrSkip(PrivateLibvirtDaemonOptions? options = null)
    {
        try { return PrivateLibvirtDaemon.Start(options); }
        catch (TestbedUnavailableException e) { Assert.Skip($"needs a libvirt daemon: {e.Message}"); throw; }
    }

    /// <summary>Starts a source and a destination instance or skips the test with the reason.</summary>
    public static LibvirtTestbed TestbedOrSkip(PrivateLibvirtDaemonOptions? source = null, PrivateLibvirtDaemonOptions? destination = null)
    {
        try { return LibvirtTestbed.Start(source, destination); }
        catch (TestbedUnavailableException e) { Assert.Skip($"needs libvirt daemons: {e.Message}"); throw; }
    }

    /// <summary>A small TCG domain: no disk, no display, nothing to boot (SeaBIOS finds no device); start it paused.</summary>
    public static string TestDomainXml(string name, int memoryMiB = 64) => $"""
        <domain type='qemu'>
          <name>{name}</name>
          <memory unit='MiB'>{memoryMiB}</memory>
          <vcpu>1</vcpu>
          <os><type arch='x86_64' machine='pc'>hvm</type></os>
          <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
          <devices>
            <emulator>{PrivateLibvirtDaemon.Emulator}</emulator>
            <video><model type='none'/></video>
            <memballoon model='none'/>
          </devices>
        </domain>
        """;

    public static string NewDomainName() => $"kp-test-{Guid.NewGuid():N}"[..20];

    /// <summary>A TCP port free right now on 127.0.0.1, for QEMU's migration stream.</summary>
    public static int FreePort() => LibvirtTestbed.FreePort();

    /// <summary>Running (a zombie waiting for its reaper counts as gone).</summary>
    public static bool Alive(int pid) => HostProcesses.Alive(pid);
}
