using System.Runtime.InteropServices;

namespace KvmPresync.Libvirt.Interop;

// libvirt-domain.h: the calls KvmPresync uses. virDomainPtr results come back as nint; LibvirtConnection and
// LibvirtDomain wrap them in DomainHandle (released by virDomainFree).
internal static partial class LibvirtNative
{
    internal const uint DomainStartPaused = 1;        // VIR_DOMAIN_START_PAUSED
    internal const uint DomainXmlSecure = 1 << 0;     // VIR_DOMAIN_XML_SECURE
    internal const uint DomainXmlInactive = 1 << 1;   // VIR_DOMAIN_XML_INACTIVE
    internal const uint DomainXmlMigratable = 1 << 3; // VIR_DOMAIN_XML_MIGRATABLE
    internal const uint DomainJobStatsCompleted = 1;  // VIR_DOMAIN_JOB_STATS_COMPLETED

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainLookupByName", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint DomainLookupByName(ConnectionHandle conn, string name);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainLookupByUUIDString", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint DomainLookupByUuidString(ConnectionHandle conn, string uuid);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainDefineXML", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint DomainDefineXml(ConnectionHandle conn, string xml);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainFree")]
    internal static partial int DomainFree(nint domain);

    /// <summary>Owned by the domain object: not freed by the caller.</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainGetName")]
    internal static partial nint DomainGetName(DomainHandle domain);

    /// <summary>Writes VIR_UUID_STRING_BUFLEN (37) bytes, NUL included.</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainGetUUIDString")]
    internal static unsafe partial int DomainGetUuidString(DomainHandle domain, byte* buf);

    /// <summary>The XML, free()d by the caller.</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainGetXMLDesc")]
    internal static partial nint DomainGetXmlDesc(DomainHandle domain, uint flags);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainGetState")]
    internal static partial int DomainGetState(DomainHandle domain, out int state, out int reason, uint flags);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainGetInfo")]
    internal static partial int DomainGetInfo(DomainHandle domain, out VirDomainInfo info);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainSuspend")]
    internal static partial int DomainSuspend(DomainHandle domain);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainResume")]
    internal static partial int DomainResume(DomainHandle domain);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainCreate")]
    internal static partial int DomainCreate(DomainHandle domain);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainCreateWithFlags")]
    internal static partial int DomainCreateWithFlags(DomainHandle domain, uint flags);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainDestroy")]
    internal static partial int DomainDestroy(DomainHandle domain);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainUndefine")]
    internal static partial int DomainUndefine(DomainHandle domain);

    /// <summary>Managed migration driven by this client: the new domain on <paramref name="dconn"/>, or NULL.</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainMigrate3")]
    internal static partial nint DomainMigrate3(DomainHandle domain, ConnectionHandle dconn, nint parameters, uint nparams, uint flags);

    /// <summary>Peer-to-peer migration (the source daemon connects to <paramref name="dconnuri"/>): 0 or -1.</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainMigrateToURI3", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int DomainMigrateToUri3(DomainHandle domain, string? dconnuri, nint parameters, uint nparams, uint flags);

    /// <summary>Allocates <paramref name="parameters"/> (free with virTypedParamsFree).</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainGetJobStats")]
    internal static partial int DomainGetJobStats(DomainHandle domain, out int type, out nint parameters, out int nparams, uint flags);

    /// <summary>virDomainInfo (libvirt-domain.h); its layout is proven against the header by LayoutTests.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct VirDomainInfo
    {
        public byte State;        // unsigned char, a virDomainState
        public CULong MaxMem;     // unsigned long, KiB
        public CULong Memory;     // unsigned long, KiB
        public ushort NrVirtCpu;  // unsigned short
        public ulong CpuTime;     // unsigned long long, ns
    }
}
