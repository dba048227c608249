using System.Runtime.InteropServices;

namespace KvmPresync.Libvirt.Interop;

// virterror.h: libvirt's per-thread last error. LibvirtException.FromLastError reads and resets it.
internal static partial class LibvirtNative
{
    /// <summary>The calling thread's last error, owned by libvirt (not freed), or NULL when there is none.</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virGetLastError")]
    internal static partial nint GetLastError();

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virResetLastError")]
    internal static partial void ResetLastError();

    /// <summary>Replaces libvirt's global error handler (the default one prints every error to stderr).</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virSetErrorFunc")]
    internal static unsafe partial void SetErrorFunc(nint userData, delegate* unmanaged<nint, nint, void> handler);

    /// <summary>virError (virterror.h); its layout is proven against the header by LayoutTests.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct VirError
    {
        public int Code;      // a virErrorNumber
        public int Domain;    // a virErrorDomain: which part of libvirt raised it
        public nint Message;  // char *
        public int Level;     // virErrorLevel: 1 warning, 2 error
        public nint Conn;     // deprecated
        public nint Dom;      // deprecated
        public nint Str1;
        public nint Str2;
        public nint Str3;
        public int Int1;
        public int Int2;
        public nint Net;      // deprecated
    }
}
