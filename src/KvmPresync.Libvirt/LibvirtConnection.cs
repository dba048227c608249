using System.Runtime.InteropServices;
using KvmPresync.Libvirt.Interop;

namespace KvmPresync.Libvirt;

/// <summary>
/// A connection to a libvirt daemon, e.g. <c>qemu:///system</c> or, for a daemon on another socket (the tests'
/// private instance), <c>qemu+unix:///system?socket=/path/libvirt-sock</c>.
/// </summary>
public sealed class LibvirtConnection : IDisposable
{
    private LibvirtConnection(ConnectionHandle handle) => Handle = handle;

    /// <summary>The native connection; domains looked up here keep it alive on their own.</summary>
    public ConnectionHandle Handle { get; }

    /// <summary>Opens a read-write connection. Throws <see cref="LibvirtException"/> naming <c>virConnectOpen</c>.</summary>
    public static LibvirtConnection Open(string uri)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        LibvirtLibrary.EnsureInitialized();
        nint conn = LibvirtNative.ConnectOpen(uri);
        if (conn == 0) throw LibvirtException.FromLastError("virConnectOpen", uri);
        return new LibvirtConnection(new ConnectionHandle(conn));
    }

    /// <summary>The libvirt version of the daemon's side (<c>virConnectGetLibVersion</c>), e.g. 9.0.0.</summary>
    public Version LibVersion
    {
        get
        {
            if (LibvirtNative.ConnectGetLibVersion(Handle, out CULong v) < 0)
                throw LibvirtException.FromLastError("virConnectGetLibVersion");
            return LibvirtLibrary.DecodeVersion(v.Value);
        }
    }

    /// <summary>The URI the connection actually uses (<c>virConnectGetURI</c>).</summary>
    public string Uri
    {
        get
        {
            nint p = LibvirtNative.ConnectGetUri(Handle);
            if (p == 0) throw LibvirtException.FromLastError("virConnectGetURI");
            return LibvirtLibrary.TakeString(p);
        }
    }

    /// <summary>False once the connection closed, e.g. because the daemon restarted (<c>virConnectIsAlive</c>).</summary>
    public bool IsAlive => LibvirtNative.ConnectIsAlive(Handle) == 1;

    /// <summary>The domain called <paramref name="name"/>; <see cref="LibvirtException"/> with VIR_ERR_NO_DOMAIN if none.</summary>
    public LibvirtDomain LookupDomain(string name)
    {
        nint d = LibvirtNative.DomainLookupByName(Handle, name);
        if (d == 0) throw LibvirtException.FromLastError("virDomainLookupByName", name);
        return new LibvirtDomain(new DomainHandle(d));
    }

    /// <summary>The domain with <paramref name="uuid"/>; <see cref="LibvirtException"/> with VIR_ERR_NO_DOMAIN if none.</summary>
    public LibvirtDomain LookupDomain(Guid uuid)
    {
        nint d = LibvirtNative.DomainLookupByUuidString(Handle, uuid.ToString("D"));
        if (d == 0) throw LibvirtException.FromLastError("virDomainLookupByUUIDString", uuid.ToString("D"));
        return new LibvirtDomain(new DomainHandle(d));
    }

    /// <summary>Defines (persists, does not start) a domain from its XML (<c>virDomainDefineXML</c>).</summary>
    public LibvirtDomain DefineDomain(string xml)
    {
        nint d = LibvirtNative.DomainDefineXml(Handle, xml);
        if (d == 0) throw LibvirtException.FromLastError("virDomainDefineXML");
        return new LibvirtDomain(new DomainHandle(d));
    }

    public void Dispose() => Handle.Dispose();
}

/// <summary>Process-wide libvirt set-up and helpers shared by the wrappers.</summary>
internal static class LibvirtLibrary
{
    private static readonly Lazy<bool> s_initialized = new(InitializeOnce, LazyThreadSafetyMode.ExecutionAndPublication);

    internal static void EnsureInitialized() => _ = s_initialized.Value;

    private static unsafe bool InitializeOnce()
    {
        if (LibvirtNative.Initialize() < 0) throw LibvirtException.FromLastError("virInitialize");
        // libvirt's default handler prints every error to stderr; errors reach callers as LibvirtException instead.
        LibvirtNative.SetErrorFunc(0, &IgnoreError);
        return true;
    }

    [UnmanagedCallersOnly]
    private static void IgnoreError(nint userData, nint error) { }

    /// <summary>libvirt encodes versions as major * 1,000,000 + minor * 1,000 + release.</summary>
    internal static Version DecodeVersion(ulong v) => new((int)(v / 1_000_000), (int)(v / 1_000 % 1_000), (int)(v % 1_000));

    /// <summary>Copies a libvirt-allocated C string and free()s it.</summary>
    internal static unsafe string TakeString(nint p)
    {
        try { return Marshal.PtrToStringUTF8(p) ?? ""; }
        finally { NativeMemory.Free((void*)p); }
    }
}
