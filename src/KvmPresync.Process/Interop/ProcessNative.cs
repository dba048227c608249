using System.Runtime.InteropServices;

namespace KvmPresync.ProcessMemory.Interop;

/// <summary>One run of written pages as PAGEMAP_SCAN reports it (struct kp_page_region = the kernel's struct page_region; LayoutTests proves it).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PageRegion
{
    public ulong Start;
    public ulong End;
    public ulong Categories;
}

// Process memory tracking (native/shim/pagemap.c). Every function returns >= 0 or -errno.
internal static partial class ProcessNative
{
    /// <summary>PAGE_IS_WRITTEN.</summary>
    internal const ulong PageIsWritten = 2;

    /// <summary>PAGE_IS_FILE, PAGE_IS_PRESENT, PAGE_IS_SWAPPED, PAGE_IS_PFNZERO: the other categories of a reported run.</summary>
    internal const ulong PageIsFile = 4, PageIsPresent = 8, PageIsSwapped = 16, PageIsPfnZero = 32;

    /// <summary>kp_uffd_register_wp: also UFFDIO_WRITEPROTECT now.</summary>
    internal const uint UffdArm = 1;

    /// <summary>Bit 63 of kp_uffd_open's features: opened with UFFD_USER_MODE_ONLY.</summary>
    internal const ulong FeatureUserModeOnly = 1UL << 63;

    internal const ulong FeatureWpHugetlbfsShmem = 1UL << 12, FeatureWpUnpopulated = 1UL << 13, FeatureWpAsync = 1UL << 15;

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_pagemap_open")]
    internal static partial int PagemapOpen(int pid);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_pagemap_scan_written")]
    internal static unsafe partial long PagemapScanWritten(int fd, ulong start, ulong end, PageRegion* vec, ulong vecLen, out ulong walkEnd);

    /// <summary>PAGEMAP_SCAN without PM_SCAN_CHECK_WPASYNC: unregistered VMAs are skipped, not refused (a whole address space).</summary>
    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_pagemap_scan_written_registered")]
    internal static unsafe partial long PagemapScanWrittenRegistered(int fd, ulong start, ulong end, PageRegion* vec, ulong vecLen, out ulong walkEnd);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_uffd_open")]
    internal static partial long UffdOpen(ulong wantFeatures, out ulong features);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_uffd_register_wp")]
    internal static partial int UffdRegisterWp(int uffd, ulong start, ulong len, uint flags);
}
