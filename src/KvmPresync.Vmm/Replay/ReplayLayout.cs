namespace KvmPresync.Vmm.Replay;

/// <summary>
/// Where a replay guest keeps the replayed pages, computed the way the guest does (native/guest/region.c,
/// wl_replay.c), which checks the VMM's answer (params[1]): after the heap's fill, a version table of one u32 per
/// replay page, then the replay region of <c>pages</c> pages. Addresses are the guest's linear (virtual) ones:
/// page index = address / 4096.
/// </summary>
public static class ReplayLayout
{
    private const long Page = 4096, TwoMiB = 2L << 20;

    /// <summary>Pages of the version table in front of the replay region.</summary>
    public static long TablePages(long pages) => (pages * sizeof(uint) + Page - 1) / Page;

    /// <summary>Linear page index of the replay region's first page.</summary>
    public static long RegionFirstPage(ulong heapStart, long fillBytes, long pages) =>
        ((long)heapStart + fillBytes + Page - 1) / Page + TablePages(pages);

    /// <summary>Guest memory the replay needs: everything up to the replay region's end.</summary>
    public static long RequiredMemory(ulong heapStart, long fillBytes, long pages) =>
        (RegionFirstPage(heapStart, fillBytes, pages) + pages) * Page;

    /// <summary><see cref="RequiredMemory"/> rounded up to 2 MiB: the size given to a replay guest when none was asked for.</summary>
    public static long AutoMemory(ulong heapStart, long fillBytes, long pages) =>
        (RequiredMemory(heapStart, fillBytes, pages) + TwoMiB - 1) / TwoMiB * TwoMiB;
}
