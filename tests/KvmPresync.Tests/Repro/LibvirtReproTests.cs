using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KvmPresync.Libvirt.Testbed;
using KvmPresync.Tests.Libvirt;
using KvmPresync.Tests.LinuxGuest;
using KvmPresync.Tests.Migration;

namespace KvmPresync.Tests.Repro;

/// <summary>
/// <c>kvmpresync repro --target libvirt</c> end to end, as a user runs it: two private libvirt instances, a fresh Linux
/// guest running text, stock pre-copy, the JSON with real figures and the heartbeat chain verified across the
/// migration; afterwards nothing of the run is left (daemons, QEMUs, directories, /dev/shm).
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LibvirtReproTests
{
    [Fact]
    public async Task Repro_target_libvirt_virsh_precopy_of_text_reports_measured_figures_and_a_verified_heartbeat_chain_and_leaves_nothing()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        if (LibvirtDaemon.Unavailable() is { } why) Assert.Skip($"needs libvirt daemons: {why}");
        string image = LinuxGuestImage.DirectoryOrSkip();
        // the run's temporary directories go to a TMPDIR of its own (traversable: libvirt-qemu reads the staged kernel
        // there), so what it leaves behind is told apart from what other programs on this host create meanwhile
        string dir = Directory.CreateTempSubdirectory("kp-repro-libvirt-test.").FullName, tmp = Path.Combine(dir, "tmp");
        Directory.CreateDirectory(tmp);
        foreach (string d in new[] { dir, tmp })
            HostProcesses.SetMode(d, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        string output = "";
        try
        {
            string json = Path.Combine(dir, "repro.json");
            using var repro = CliProcess.StartWithEnvironment(new Dictionary<string, string> { ["TMPDIR"] = tmp + "/" },
                "repro", "--target", "libvirt", "--workloads", "text", "--runs", "1", "--modes", "virsh-precopy",
                "--sync-seconds", "3", "--guest-image", image, "--json", json);
            int code = await repro.WaitForExitAsync(TimeSpan.FromMinutes(5), ct);
            output = repro.Output;
            Assert.True(code == 0, $"repro exited {code}:\n{output}");
            foreach (string step in new[] { "starting two private libvirt instances", "booting", "first heartbeat", "launch: virDomainMigrate3", "destination domain running" })
                Assert.Contains(step, output, StringComparison.Ordinal); // progress on stderr

            JsonNode report = JsonNode.Parse(await File.ReadAllTextAsync(json, ct))!;
            Assert.Equal("libvirt", (string)report["target"]!);
            Assert.Equal(["virsh-precopy"], report["modes"]!.AsArray().Select(m => (string)m!));
            JsonNode mode = report["workloads"]!["text"]!["virsh-precopy"]!;
            Assert.True((bool)mode["verified"]!, output);
            double launchToResume = (double)mode["launchToResumeMs"]!["median"]!, downtime = (double)mode["downtimeMs"]!["median"]!;
            double sent = (double)mode["launchBytes"]!["median"]!;
            Assert.InRange(launchToResume, 50, 120_000);
            Assert.InRange(downtime, 1, launchToResume);
            Assert.True(sent > 16 << 20, $"only {sent} bytes sent for a 256 MiB guest that filled its memory");

            JsonNode run = mode["runs"]![0]!;
            Assert.True((bool)run["succeeded"]!, (string?)run["failure"]);
            JsonNode libvirt = run["libvirt"]!, heartbeats = libvirt["heartbeats"]!;
            Assert.True((bool)heartbeats["verified"]!, (string?)heartbeats["failure"]);
            Assert.Empty(heartbeats["gaps"]!.AsArray());
            Assert.True((int)heartbeats["onSource"]! > 10 && (int)heartbeats["onDestination"]! >= 20, heartbeats.ToJsonString());
            Assert.Equal((ulong)heartbeats["lastSourceSeq"]! + 1, (ulong)heartbeats["firstDestinationSeq"]!);
            Assert.NotNull(heartbeats["stallMs"]);
            Assert.Equal(downtime, (double)libvirt["jobStats"]!["downtime"]!);      // downtime is libvirt's own figure
            Assert.True((double)libvirt["migrateCallMs"]! >= launchToResume, "the migrate call returned before the destination ran");
            Assert.Equal("migrated", (string?)libvirt["destinationRunningReason"]);
            TestContext.Current.SendDiagnosticMessage(
                $"libvirt virsh-precopy text: launch-to-resume {launchToResume:0} ms, downtime {downtime:0} ms (console stall {(double)heartbeats["stallMs"]!:0} ms), {sent / 1048576:0.0} MiB");

            // nothing of the run is left: its TMPDIR is empty (instances, guest), no /dev/shm directory of its instances, no process in their namespaces
            string[] instances = Regex.Matches(output, @"/kp-libvirtd-\w+").Select(m => m.Value[1..]).Distinct().ToArray();
            Assert.Equal(2, instances.Length);
            Assert.Empty(Directory.GetFileSystemEntries(tmp));
            Assert.All(instances, i => Assert.False(Directory.Exists(Path.Combine("/dev/shm", i)), $"/dev/shm/{i} left behind"));
            Assert.Empty(Directory.GetDirectories("/proc").Select(p => InNamespaceUnder(p, tmp)).OfType<string>());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The process at <paramref name="proc"/> when one of its mounts comes from under <paramref name="directory"/> (a testbed instance's namespace).</summary>
    private static string? InNamespaceUnder(string proc, string directory)
    {
        try
        {
            return int.TryParse(Path.GetFileName(proc), out _)
                   && File.ReadAllText(Path.Combine(proc, "mountinfo")).Contains(" " + directory + "/", StringComparison.Ordinal)
                ? $"process {Path.GetFileName(proc)}: {File.ReadAllText(Path.Combine(proc, "cmdline")).Replace('\0', ' ')}"
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; } // gone meanwhile
    }
}
