using System.Diagnostics;
using System.Xml.Linq;
using KvmPresync.Libvirt.Testbed;

namespace KvmPresync.Tests.LinuxGuest;

/// <summary>contrib/linux-guest-domain.xml: the libvirt domain the libvirt work boots the Linux guest image in.</summary>
public sealed class DomainTemplateTests
{
    private static string Filled() =>
        File.ReadAllText(Path.Combine(LinuxGuestImage.RepoRoot(), "contrib", "linux-guest-domain.xml"))
            .Replace("@NAME@", "kp-linux").Replace("@KERNEL@", "/var/lib/libvirt/images/kp-vmlinuz")
            .Replace("@INITRD@", "/var/lib/libvirt/images/kp-initramfs.cpio.gz").Replace("@WORKLOAD@", "movie")
            .Replace("@SEED@", "1").Replace("@SERIAL_LOG@", "/var/log/kp-linux.serial");

    [Fact]
    public void The_template_is_a_TCG_qemu64_single_vcpu_direct_kernel_boot_with_shared_file_memory_and_a_serial_file()
    {
        XElement d = XDocument.Parse(Filled()).Root!;
        Assert.Equal("qemu", (string?)d.Attribute("type"));
        Assert.Equal("1", d.Element("vcpu")!.Value);
        Assert.Equal("qemu64", d.Element("cpu")!.Element("model")!.Value);
        Assert.Equal("file", (string?)d.Element("memoryBacking")!.Element("source")!.Attribute("type"));
        Assert.Equal("shared", (string?)d.Element("memoryBacking")!.Element("access")!.Attribute("mode"));
        XElement os = d.Element("os")!;
        Assert.Equal("/var/lib/libvirt/images/kp-vmlinuz", os.Element("kernel")!.Value);
        Assert.Equal("/var/lib/libvirt/images/kp-initramfs.cpio.gz", os.Element("initrd")!.Value);
        Assert.Equal("console=ttyS0 panic=-1 pti=on kp.workload=movie kp.seed=1", os.Element("cmdline")!.Value);
        XElement serial = d.Element("devices")!.Element("serial")!;
        Assert.Equal("file", (string?)serial.Attribute("type"));
        Assert.Equal("/var/log/kp-linux.serial", (string?)serial.Element("source")!.Attribute("path"));
        Assert.DoesNotContain("@", Filled().Split("-->")[1]);   // every placeholder filled (the comment names them)
    }

    [Fact]
    public async Task The_filled_template_passes_libvirts_schema_when_virt_xml_validate_is_installed()
    {
        if (!File.Exists("/usr/bin/virt-xml-validate")) return;   // libvirt-clients is not a test dependency; the check above still ran
        string path = Path.Combine(Directory.CreateTempSubdirectory("kp-domain.").FullName, "domain.xml");
        try
        {
            await File.WriteAllTextAsync(path, Filled(), TestContext.Current.CancellationToken);
            var psi = new ProcessStartInfo("/usr/bin/virt-xml-validate") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add(path);
            psi.ArgumentList.Add("domain");
            using Process p = Process.Start(psi)!;
            CancellationToken ct = TestContext.Current.CancellationToken;
            string output = await p.StandardOutput.ReadToEndAsync(ct) + await p.StandardError.ReadToEndAsync(ct);
            await p.WaitForExitAsync(ct);
            Assert.True(p.ExitCode == 0, output);
        }
        finally { Directory.Delete(Path.GetDirectoryName(path)!, recursive: true); }
    }

    [Fact]
    public void The_testbed_boots_exactly_the_contrib_template_embedded_in_KvmPresync_Libvirt() =>
        Assert.Equal(File.ReadAllText(Path.Combine(LinuxGuestImage.RepoRoot(), "contrib", "linux-guest-domain.xml")), LinuxGuestDomain.Template());
}
