using System.Runtime.InteropServices;

namespace KvmPresync.Libvirt.Interop;

// libc calls .NET does not wrap: hard links and ownership, for handing the pre-synchronized RAM file to QEMU.
internal static partial class FileNative
{
    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int Link(string oldPath, string newPath);

    [LibraryImport("libc", EntryPoint = "chown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int Chown(string path, uint owner, uint group);

}
