using System.Xml.Linq;
using KvmPresync.ProcessMemory;

namespace KvmPresync.Libvirt.Presync;

/// <summary>One requirement of a presync source domain, met or not, with the exact change when not.</summary>
public sealed record DomainFinding(string Requirement, bool Met, string Detail, string? Fix = null);

/// <summary>
/// What <c>kvmpresync libvirt check DOMAIN</c> verifies (docs/LIBVIRT.md, "Domain requirements"): from the domain XML,
/// RAM in a shared file, no NUMA cells, the preload tracker in QEMU's environment, <c>pti=on</c> for a TCG guest's kernel;
/// and, when the domain runs here, that QEMU maps the RAM file and the tracker registered it.
/// </summary>
public static class DomainCheck
{
    public const string TrackerFileName = "libkvmpresync-track.so";

    /// <summary>Checks the XML; <paramref name="trackerPath"/> is the preload library's path to suggest.</summary>
    public static IReadOnlyList<DomainFinding> CheckXml(string domainXml, string trackerPath)
    {
        XElement domain = XDocument.Parse(domainXml).Root ?? throw new ArgumentException("empty domain XML", nameof(domainXml));
        XNamespace q = PresyncDomainXml.QemuNamespace;
        var findings = new List<DomainFinding>();

        XElement? backing = domain.Element("memoryBacking");
        bool file = (string?)backing?.Element("source")?.Attribute("type") == "file";
        bool shared = (string?)backing?.Element("access")?.Attribute("mode") == "shared";
        findings.Add(new DomainFinding("RAM in a shared file", file && shared,
            file && shared ? "memoryBacking: source type='file', access mode='shared'" : $"memoryBacking: source {(file ? "file" : "not file")}, access {(shared ? "shared" : "not shared")}",
            "<memoryBacking>\n  <source type='file'/>\n  <access mode='shared'/>\n</memoryBacking>\n(in <domain>; libvirt puts the file in qemu.conf's memory_backing_dir, which should be on tmpfs such as /dev/shm)"));

        bool numa = domain.Element("cpu")?.Element("numa") is not null;
        findings.Add(new DomainFinding("one RAM block (no NUMA cells)", !numa, numa ? "<cpu><numa> defines NUMA cells: several RAM files" : "no NUMA cells",
            "remove <numa> from <cpu>: presync moves one RAM block per domain"));

        XElement? commandline = domain.Element(q + "commandline");
        string? preload = commandline?.Elements(q + "env").FirstOrDefault(e => (string?)e.Attribute("name") == "LD_PRELOAD")?.Attribute("value")?.Value;
        string? trackPath = commandline?.Elements(q + "env").FirstOrDefault(e => (string?)e.Attribute("name") == "KVMPRESYNC_TRACK_PATH")?.Attribute("value")?.Value;
        bool tracker = preload?.Contains(TrackerFileName, StringComparison.Ordinal) == true && !string.IsNullOrEmpty(trackPath);
        findings.Add(new DomainFinding("dirty tracking inside QEMU", tracker,
            tracker ? $"LD_PRELOAD={preload}, KVMPRESYNC_TRACK_PATH={trackPath}" : "QEMU's environment lacks the preload tracker",
            $"<domain type='{(string?)domain.Attribute("type") ?? "qemu"}' xmlns:qemu='{PresyncDomainXml.QemuNamespace}'>\n  …\n  <qemu:commandline>\n" +
            $"    <qemu:env name='LD_PRELOAD' value='{trackerPath}'/>\n" +
            "    <qemu:env name='KVMPRESYNC_TRACK_PATH' value='MEMORY_BACKING_DIR/libvirt/qemu/*/pc.ram'/>\n  </qemu:commandline>\n</domain>\n" +
            $"(the library must be readable by the QEMU user, e.g. under /usr/local/lib/kvmpresync/; libvirt marks the domain tainted)"));

        string? cmdline = (string?)domain.Element("os")?.Element("cmdline");
        if ((string?)domain.Attribute("type") == "qemu" && cmdline is not null)
        {
            bool pti = cmdline.Split(' ').Contains("pti=on");
            findings.Add(new DomainFinding("pti=on for a TCG guest", pti, pti ? "the kernel command line has pti=on" : "the kernel command line lacks pti=on",
                "add pti=on to <os><cmdline>: QEMU 7.2 TCG loses dirty pages in its device-state migration without it"));
        }
        return findings;
    }

    /// <summary>For a domain running on this host: QEMU maps its RAM file and the tracker registered it.</summary>
    public static IReadOnlyList<DomainFinding> CheckRunning(Guid uuid, long memoryBytes)
    {
        int pid;
        try { pid = QemuProcess.FindSource(uuid); }
        catch (InvalidOperationException e) { return [new DomainFinding("QEMU process on this host", false, e.Message, "run the check on the domain's host, as root")]; }
        var findings = new List<DomainFinding> { new("QEMU process on this host", true, $"pid {pid}") };
        ProcessMemoryRegion region;
        try { region = DomainRam.Locate(pid, memoryBytes); }
        catch (InvalidOperationException e) { findings.Add(new DomainFinding("QEMU maps the RAM file", false, e.Message)); return findings; }
        findings.Add(new DomainFinding("QEMU maps the RAM file", true, region.ToString()));
        bool registered = region.IsRegistered(pid, out IReadOnlyList<string> missing);
        findings.Add(new DomainFinding("tracker registered the RAM", registered,
            registered ? "'uw' VmFlag on every VMA of the RAM" : $"no 'uw' VmFlag on {string.Join(", ", missing.Take(3))}",
            "check KVMPRESYNC_TRACK_PATH matches the RAM path above, then restart the domain"));
        return findings;
    }
}
