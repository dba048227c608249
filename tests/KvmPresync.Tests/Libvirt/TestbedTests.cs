using KvmPresync.Libvirt;
using KvmPresync.Libvirt.Testbed;

namespace KvmPresync.Tests.Libvirt;

/// <summary>
/// The testbed (src/KvmPresync.Libvirt/Testbed): a private instance leaves nothing behind, installs the hook it is
/// given before libvirtd starts, puts file-backed RAM in its own /dev/shm directory (or the one given), reports its
/// QEMUs' pids, and runs QEMU privileged only when asked.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class TestbedTests
{
    /// <summary>The test domain with its RAM in a named shared file under memory_backing_dir, as the Linux guest template has it.</summary>
    private static string FileBackedDomainXml(string name) =>
        LibvirtDaemon.TestDomainXml(name).Replace("<vcpu>", "<memoryBacking><source type='file'/><access mode='shared'/></memoryBacking>\n  <vcpu>", StringComparison.Ordinal);

    [Fact]
    public void DisposeStopsTheDaemonsAndTheirQemuAndDeletesTheDirectoryAndTheSharedMemory()
    {
        using var daemon = LibvirtDaemon.StartOrSkip(); // disposed below; again (a no-op) if an assertion fails first
        int libvirtd = daemon.LibvirtdPid, virtlogd = daemon.VirtlogdPid;
        string dir = daemon.BaseDirectory, shm = daemon.MemoryBackingDirectory;
        Assert.StartsWith("/dev/shm/", shm, StringComparison.Ordinal);
        int qemu;
        using (var conn = daemon.Connect())
        using (var dom = conn.DefineDomain(FileBackedDomainXml(LibvirtDaemon.NewDomainName())))
        {
            dom.Start(paused: true);
            qemu = daemon.QemuPid(dom.Name) ?? throw new InvalidOperationException($"no pid in {daemon.QemuPidFile(dom.Name)}");
            Assert.True(LibvirtDaemon.Alive(qemu));
            string ram = Assert.Single(Directory.GetFiles(shm, "*", SearchOption.AllDirectories));
            Assert.Contains(ram, File.ReadAllText($"/proc/{qemu}/maps"), StringComparison.Ordinal); // QEMU maps it
            Assert.True(File.Exists(daemon.QemuLogPath(dom.Name)));
        }
        Assert.True(LibvirtDaemon.Alive(libvirtd) && LibvirtDaemon.Alive(virtlogd));
        daemon.Dispose();
        Assert.False(LibvirtDaemon.Alive(qemu), "QEMU survived");
        Assert.False(LibvirtDaemon.Alive(libvirtd), "libvirtd survived");
        Assert.False(LibvirtDaemon.Alive(virtlogd), "virtlogd survived");
        Assert.False(Directory.Exists(dir), $"{dir} left behind");
        Assert.False(Directory.Exists(shm), $"{shm} left behind");
    }

    [Fact]
    public void TheHookIsInstalledBeforeStartAndRunsForEachDomainOperation_AGivenMemoryBackingDirectoryIsUsedAndKept()
    {
        string work = Directory.CreateTempSubdirectory("kp-hook-test-").FullName;
        string shm = Path.Combine("/dev/shm", Path.GetFileName(work));
        try
        {
            string calls = Path.Combine(work, "calls"), hook = Path.Combine(work, "hook.sh");
            File.WriteAllText(hook, $"#!/bin/sh\necho \"$1 $2 $3\" >> {calls}\n");
            using (var daemon = LibvirtDaemon.StartOrSkip(new PrivateLibvirtDaemonOptions { QemuHook = hook, MemoryBackingDirectory = shm }))
            {
                Assert.True(File.Exists(Path.Combine(daemon.ConfigDirectory, "hooks", "qemu")));
                using var conn = daemon.Connect();
                using var dom = conn.DefineDomain(FileBackedDomainXml(LibvirtDaemon.NewDomainName()));
                dom.Start(paused: true);
                Assert.Single(Directory.GetFiles(shm, "*", SearchOption.AllDirectories));
                dom.Destroy();
                string[] lines = File.ReadAllLines(calls);
                foreach (string op in new[] { "prepare begin", "start begin", "started begin", "stopped end", "release end" })
                    Assert.Contains($"{dom.Name} {op}", lines);
            }
            Assert.True(Directory.Exists(shm), "a memory backing directory the caller gave is the caller's");
            Assert.Empty(Directory.GetFiles(shm, "*", SearchOption.AllDirectories)); // libvirt removed the domain's RAM file
        }
        finally
        {
            Directory.Delete(work, recursive: true);
            if (Directory.Exists(shm)) Directory.Delete(shm, recursive: true);
        }
    }

    [Fact]
    public void QemuRunsAsLibvirtQemuUnlessPrivileged()
    {
        using LibvirtTestbed testbed = LibvirtDaemon.TestbedOrSkip(destination: new PrivateLibvirtDaemonOptions { PrivilegedQemu = true });
        Assert.NotEqual(testbed.Source.HostUuid, testbed.Destination.HostUuid);
        foreach (var (daemon, uid) in new[] { (testbed.Source, "64055"), (testbed.Destination, "0") })
        {
            using var conn = daemon.Connect();
            using var dom = conn.DefineDomain(LibvirtDaemon.TestDomainXml(LibvirtDaemon.NewDomainName()));
            dom.Start(paused: true);
            string status = File.ReadAllText($"/proc/{daemon.QemuPid(dom.Name)}/status");
            string uidLine = status.Split('\n').First(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            string expected = uid == "0" ? "0" : File.ReadAllLines("/etc/passwd").First(l => l.StartsWith("libvirt-qemu:", StringComparison.Ordinal)).Split(':')[2];
            Assert.Equal(expected, uidLine.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
        }
        Assert.Matches(@"^tcp://127\.0\.0\.1:\d+$", testbed.NewMigrationUri());
    }
}
