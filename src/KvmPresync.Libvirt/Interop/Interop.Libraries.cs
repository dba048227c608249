namespace KvmPresync.Libvirt.Interop;

/// <summary>
/// libvirt's C API (Debian package <c>libvirt0</c>), one file per native family as dotnet/runtime does. libvirt does
/// not report through errno: a failing call returns NULL or -1 and leaves a thread-local <c>virError</c>
/// (<see cref="GetLastError"/>), so no import sets <c>SetLastError</c>. Every import is <c>[LibraryImport]</c>;
/// pointers to libvirt objects travel as the SafeHandles of <c>Handles.cs</c> or as <c>nint</c> where a factory
/// wraps them.
/// </summary>
internal static partial class LibvirtNative
{
    /// <summary>The shared objects, named in this one place.</summary>
    internal static class Libraries
    {
        /// <summary>The core library (connections, domains, errors, typed parameters).</summary>
        public const string Libvirt = "libvirt.so.0";

        /// <summary>The QEMU-specific API (<c>virDomainQemuMonitorCommand</c>); the same Debian package.</summary>
        public const string LibvirtQemu = "libvirt-qemu.so.0";
    }
}
