using System.Runtime.InteropServices;

namespace KvmPresync.Libvirt.Interop;

// libvirt-host.h: the library and connections. Pointers returned here are wrapped by LibvirtConnection.Open.
internal static partial class LibvirtNative
{
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virInitialize")]
    internal static partial int Initialize();

    /// <summary><c>virConnectPtr virConnectOpen(const char *name)</c>: NULL on failure.</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virConnectOpen", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint ConnectOpen(string uri);

    /// <summary>Drops one reference: the remaining count (≥ 0) or -1.</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virConnectClose")]
    internal static partial int ConnectClose(nint conn);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virConnectGetLibVersion")]
    internal static partial int ConnectGetLibVersion(ConnectionHandle conn, out CULong libVer);

    /// <summary>The URI the connection really uses (after defaults and aliases); free()d by the caller.</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virConnectGetURI")]
    internal static partial nint ConnectGetUri(ConnectionHandle conn);

    /// <summary>1 alive, 0 closed (e.g. the daemon restarted), -1 error.</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virConnectIsAlive")]
    internal static partial int ConnectIsAlive(ConnectionHandle conn);
}
