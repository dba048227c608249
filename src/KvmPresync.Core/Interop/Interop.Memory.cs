using System.Runtime.InteropServices;

namespace KvmPresync.Interop;

// Guest memory (native/shim/memory.c) and the layout proof (native/shim/layout.c).
internal static partial class Native
{
    internal const uint MapHugePage = 1;
    internal const uint MapPopulate = 2;

    [LibraryImport(Libraries.Shim, EntryPoint = "kp_memfd_create", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int MemfdCreate(string name, ulong size);

    [LibraryImport(Libraries.Shim, EntryPoint = "kp_mmap_shared")]
    internal static partial nint MmapShared(int fd, ulong size, uint flags, out int err);

    [LibraryImport(Libraries.Shim, EntryPoint = "kp_close")]
    internal static partial int Close(int fd);

    [LibraryImport(Libraries.Shim, EntryPoint = "kp_munmap")]
    internal static partial int Munmap(nint addr, ulong size);

    [LibraryImport(Libraries.Shim, EntryPoint = "kp_layout_sizeof", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial long LayoutSizeof(string type);

    [LibraryImport(Libraries.Shim, EntryPoint = "kp_layout_offsetof", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial long LayoutOffsetof(string type, string field);
}
