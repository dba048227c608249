using System.Xml.Linq;

namespace KvmPresync.Libvirt.Presync;

/// <summary>
/// What a presync adds to the destination's domain XML (<c>VIR_MIGRATE_PARAM_DEST_XML</c>), and how the destination's
/// hook and receiver read it back (docs/LIBVIRT.md, "The flow"):
/// <list type="bullet">
/// <item>metadata naming the presync session, <c>&lt;kp:presync xmlns:kp="https://kvmpresync.dev/libvirt/1" session="HEX"/&gt;</c>:
/// the hook acts only for domains that carry it, and the receiver finds the session's memory by it;</item>
/// <item>a second QMP monitor on <c>QMPDIR/UUID.sock</c> (<c>&lt;qemu:commandline&gt;</c>; libvirt marks the domain tainted
/// "custom-argv"): the receiver sets <c>x-ignore-shared</c> through it, since a hook must not call back into libvirt;</item>
/// <item><see cref="RequiresHookArgument"/>, which only the destination's hook removes.</item>
/// </list>
/// </summary>
public static class PresyncDomainXml
{
    public const string MetadataNamespace = "https://kvmpresync.dev/libvirt/1";
    public const string QemuNamespace = "http://libvirt.org/schemas/domain/qemu/1.0";

    /// <summary>
    /// An argument QEMU refuses, put in the destination XML so that QEMU cannot start there unless the presync hook runs:
    /// the hook removes it at libvirt's "migrate begin" (whose output replaces the XML). A destination without the hook
    /// (or whose libvirtd started before it was installed) fails the migration at once, while the source still runs.
    /// </summary>
    public const string RequiresHookArgument = "-kvmpresync-destination-hook-missing";

    /// <summary>The destination QEMU's extra monitor socket.</summary>
    public static string QmpSocketPath(string qmpDirectory, Guid uuid) => Path.Combine(qmpDirectory, uuid.ToString("D") + ".sock");

    /// <summary>The source's migratable XML with the presync metadata and the extra monitor added (earlier ones replaced).</summary>
    public static string ForDestination(string migratableXml, string sessionIdHex, string qmpDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(sessionIdHex);
        if (!sessionIdHex.All(Uri.IsHexDigit)) throw new ArgumentException($"session id '{sessionIdHex}' is not hexadecimal", nameof(sessionIdHex));
        XDocument doc = XDocument.Parse(migratableXml);
        XElement domain = doc.Root ?? throw new ArgumentException("the domain XML has no root element", nameof(migratableXml));
        Guid uuid = Guid.Parse((string?)domain.Element("uuid") ?? throw new ArgumentException("the domain XML has no <uuid>", nameof(migratableXml)));
        XNamespace kp = MetadataNamespace, qemu = QemuNamespace;

        XElement metadata = domain.Element("metadata") ?? AddAfter(domain, new XElement("metadata"), "uuid", "title", "description");
        metadata.Elements(kp + "presync").Remove();
        metadata.Add(new XElement(kp + "presync", new XAttribute(XNamespace.Xmlns + "kp", kp.NamespaceName), new XAttribute("session", sessionIdHex)));

        string socket = QmpSocketPath(qmpDirectory, uuid);
        if (domain.Attribute(XNamespace.Xmlns + "qemu") is null) domain.Add(new XAttribute(XNamespace.Xmlns + "qemu", qemu.NamespaceName));
        XElement commandline = domain.Element(qemu + "commandline") ?? new XElement(qemu + "commandline");
        if (commandline.Parent is null) domain.Add(commandline);
        RemoveOurMonitor(commandline, qemu);
        commandline.Elements(qemu + "arg").Where(a => (string?)a.Attribute("value") == RequiresHookArgument).Remove();
        commandline.AddFirst(
            new XElement(qemu + "arg", new XAttribute("value", RequiresHookArgument)),
            new XElement(qemu + "arg", new XAttribute("value", "-qmp")),
            new XElement(qemu + "arg", new XAttribute("value", $"unix:{socket},server=on,wait=off")));
        return doc.ToString(SaveOptions.DisableFormatting);
    }

    /// <summary>
    /// A source domain's XML with the preload tracker in its QEMU's environment (<c>LD_PRELOAD</c> =
    /// <paramref name="trackerPath"/>, <c>KVMPRESYNC_TRACK_PATH</c> = <paramref name="trackPath"/>, an fnmatch pattern of the
    /// RAM file): what <c>kvmpresync libvirt check</c> asks for. Earlier values of both variables are replaced.
    /// </summary>
    public static string WithTracker(string domainXml, string trackerPath, string trackPath)
    {
        XDocument doc = XDocument.Parse(domainXml);
        XElement domain = doc.Root ?? throw new ArgumentException("the domain XML has no root element", nameof(domainXml));
        XNamespace qemu = QemuNamespace;
        if (domain.Attribute(XNamespace.Xmlns + "qemu") is null) domain.Add(new XAttribute(XNamespace.Xmlns + "qemu", qemu.NamespaceName));
        XElement commandline = domain.Element(qemu + "commandline") ?? new XElement(qemu + "commandline");
        if (commandline.Parent is null) domain.Add(commandline);
        commandline.Elements(qemu + "env").Where(e => (string?)e.Attribute("name") is "LD_PRELOAD" or "KVMPRESYNC_TRACK_PATH").Remove();
        commandline.Add(
            new XElement(qemu + "env", new XAttribute("name", "LD_PRELOAD"), new XAttribute("value", trackerPath)),
            new XElement(qemu + "env", new XAttribute("name", "KVMPRESYNC_TRACK_PATH"), new XAttribute("value", trackPath)));
        return doc.ToString(SaveOptions.DisableFormatting);
    }

    /// <summary>The presync session named in a domain XML's metadata, or null.</summary>
    public static string? SessionOf(string domainXml)
    {
        XElement? e = XDocument.Parse(domainXml).Root?.Element("metadata")?.Element(XName.Get("presync", MetadataNamespace));
        return (string?)e?.Attribute("session");
    }

    private static void RemoveOurMonitor(XElement commandline, XNamespace qemu)
    {
        List<XElement> args = commandline.Elements(qemu + "arg").ToList();
        for (int i = 0; i + 1 < args.Count; i++)
            if ((string?)args[i].Attribute("value") == "-qmp" && ((string?)args[i + 1].Attribute("value"))?.Contains(".sock,server=on", StringComparison.Ordinal) == true)
            {
                args[i].Remove();
                args[i + 1].Remove();
                i++;
            }
    }

    private static XElement AddAfter(XElement parent, XElement child, params string[] after)
    {
        XElement? anchor = after.Select(n => parent.Element(n)).LastOrDefault(e => e is not null);
        if (anchor is null) parent.AddFirst(child);
        else anchor.AddAfterSelf(child);
        return child;
    }
}
