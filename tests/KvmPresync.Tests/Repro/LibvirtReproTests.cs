using System.Text.Json.Nodes;
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
        string dir = Directory.CreateTempSubdirectory("kp-repro-libvirt-test.").FullName;
        string[] before = Leftovers();
        try
        {
            string json = Path.Combine(dir, "repro.json");
            using var repro = CliProcess.Start("repro", "--target", "libvirt", "--workloads", "text", "--runs", "1", "--modes", "virsh-precopy",
                "--sync-seconds", "3", "--guest-image", image, "--json", json);
            int code = await repro.WaitForExitAsync(TimeSpan.FromMinutes(5), ct);
            string output = repro.Output;
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
            TestContext.Current.SendDiagnosticMessage(
                $"libvirt virsh-precopy text: launch-to-resume {launchToResume:0} ms, downtime {downtime:0} ms (console stall {(double)heartbeats["stallMs"]!:0} ms), {sent / 1048576:0.0} MiB");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        Assert.Equal(before, Leftovers());
    }

    /// <summary>
    /// What a testbed run creates and must remove: instance and guest directories, /dev/shm RAM directories, and any
    /// process (libvirtd, virtlogd, QEMU) in an instance's mount namespace, whose /run/libvirt is a /tmp/kp-libvirtd-* bind mount.
    /// </summary>
    private static string[] Leftovers() =>
        Directory.GetDirectories(Path.GetTempPath(), "kp-libvirtd-*").Concat(Directory.GetDirectories(Path.GetTempPath(), "kp-guest-*"))
            .Concat(Directory.GetDirectories("/dev/shm", "kp-libvirtd-*"))
            .Concat(Directory.GetDirectories("/proc").Select(InInstanceNamespace).OfType<string>())
            .Order(StringComparer.Ordinal).ToArray();

    private static string? InInstanceNamespace(string proc)
    {
        try
        {
            return int.TryParse(Path.GetFileName(proc), out _)
                   && File.ReadAllText(Path.Combine(proc, "mountinfo")).Contains(" /tmp/kp-libvirtd-", StringComparison.Ordinal)
                ? $"process {Path.GetFileName(proc)}: {File.ReadAllText(Path.Combine(proc, "cmdline")).Replace('\0', ' ')}"
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; } // gone meanwhile
    }
}
