using System.Diagnostics;
using KvmPresync.Core;
using KvmPresync.Memory;
using KvmPresync.ProcessMemory.Interop;

namespace KvmPresync.ProcessMemory;

/// <summary>
/// The pages another process (or this one, pid 0) wrote in its registered ranges, as one <see cref="IDirtyPageSource"/>:
/// each harvest runs PAGEMAP_SCAN (PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, PAGE_IS_WRITTEN) over every region,
/// which reports the pages written since the previous scan and write-protects exactly those again in the same call,
/// and ORs them into the caller's bitmap at the region's linear offset. A write after a page was re-armed is reported by
/// the next harvest, so no page is lost between harvests.
/// </summary>
/// <remarks>
/// The ranges must be registered with a userfaultfd in async write-protect mode inside the process — by the preload
/// library (native/tracker, <c>LD_PRELOAD=libkvmpresync-track.so</c>) or, for this process, <see cref="UserfaultfdHandle"/>.
/// Pages already present when a range was registered are reported by the first harvest.
/// </remarks>
public sealed class ProcessDirtyPageSource : IDirtyPageSource, IDisposable
{
    private const int VectorLength = 512; // runs per PAGEMAP_SCAN call; the walk resumes at walk_end when it fills
    private readonly PagemapHandle _pagemap;
    private readonly ProcessMemoryRegion[] _regions;
    private readonly long[] _firstIndex;
    private readonly PageRegion[] _vec = new PageRegion[VectorLength];
    private readonly Func<ulong>? _progress;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private ulong _lastProgress;

    /// <param name="pid">The tracked process; 0 = this process.</param>
    /// <param name="regions">Page-aligned ranges, in the order their pages are numbered.</param>
    /// <param name="progressTotal">Reads the workload's total work units, for <see cref="DirtyHarvest.Progress"/>.</param>
    public ProcessDirtyPageSource(int pid, IReadOnlyList<ProcessMemoryRegion> regions, Func<ulong>? progressTotal = null)
    {
        ArgumentNullException.ThrowIfNull(regions);
        if (regions.Count == 0) throw new ArgumentException("no memory regions to track", nameof(regions));
        PageSize = Environment.SystemPageSize;
        _regions = regions.ToArray();
        _firstIndex = new long[_regions.Length];
        long pages = 0;
        for (int i = 0; i < _regions.Length; i++)
        {
            ProcessMemoryRegion r = _regions[i] ?? throw new ArgumentException($"region {i} is null", nameof(regions));
            if (r.End <= r.Start || r.Start % (ulong)PageSize != 0 || r.End % (ulong)PageSize != 0)
                throw new ArgumentException($"region {r} is empty or not aligned to {PageSize}-byte pages", nameof(regions));
            _firstIndex[i] = pages;
            pages += r.PageCount(PageSize);
        }
        PageCount = pages;
        ProcessId = pid;
        _pagemap = PagemapHandle.Open(pid);
        _progress = progressTotal;
        _lastProgress = progressTotal?.Invoke() ?? 0;
    }

    public long PageCount { get; }

    public int PageSize { get; }

    /// <summary>The tracked process (0 = this process).</summary>
    public int ProcessId { get; }

    /// <summary>The tracked regions, in page-number order.</summary>
    public IReadOnlyList<ProcessMemoryRegion> Regions => _regions;

    /// <summary>Linear index of the first page of region <paramref name="region"/>.</summary>
    public long FirstIndexOf(int region) => _firstIndex[region];

    public DirtyHarvest Harvest(DirtyBitmap into)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (into.PageCount != PageCount)
            throw new ArgumentException($"bitmap covers {into.PageCount} pages, the regions have {PageCount}", nameof(into));
        TimeSpan time = _clock.Elapsed;
        long count = 0;
        for (int i = 0; i < _regions.Length; i++)
            count += ScanRegion(i, into.Words);
        ulong progress = 0;
        if (_progress is not null)
        {
            ulong now = _progress();
            progress = now - _lastProgress;
            _lastProgress = now;
        }
        return new DirtyHarvest(time, count, progress);
    }

    /// <summary>Scans one region to its end (several calls when the vector fills); ORs each run at once; returns pages reported.</summary>
    private long ScanRegion(int i, Span<ulong> words)
    {
        ProcessMemoryRegion r = _regions[i];
        int shift = BitOperationsLog2(PageSize);
        long count = 0;
        PagemapWalk walk = _pagemap.ScanWritten(r.Start, r.End, _vec, skipUnregistered: false);
        while (walk.Next(out ReadOnlySpan<PageRegion> runs))
        {
            foreach (ref readonly PageRegion run in runs)
            {
                // The kernel clamps runs to [start, end); they are already re-armed, so they go into the bitmap now.
                long first = _firstIndex[i] + (long)((run.Start - r.Start) >> shift);
                long pages = (long)((run.End - run.Start) >> shift);
                SetRun(words, first, pages);
                count += pages;
            }
        }
        if (walk.Errno != 0) throw _pagemap.ScanFailure(r.ToString(), walk.Errno, walk.Errno == 1 ? Unregistered(r) : null);
        return count;
    }

    private static int BitOperationsLog2(int v) => System.Numerics.BitOperations.Log2((uint)v);

    private static void SetRun(Span<ulong> words, long first, long count)
    {
        long end = first + count;
        while (first < end)
        {
            int w = (int)(first >> 6), bit = (int)(first & 63);
            int n = (int)Math.Min(64 - bit, end - first);
            ulong mask = n == 64 ? ulong.MaxValue : ((1UL << n) - 1) << bit;
            words[w] |= mask;
            first += n;
        }
    }

    private string Unregistered(ProcessMemoryRegion r)
    {
        const string what = "part of the range is not registered for userfaultfd async write protection";
        const string todo = "start the process with LD_PRELOAD=libkvmpresync-track.so and KVMPRESYNC_TRACK_PATH (or KVMPRESYNC_TRACK_ALL=1), and read its status (KVMPRESYNC_TRACK_STATUS)";
        try
        {
            if (!r.IsRegistered(ProcessId, out IReadOnlyList<string> missing))
                return $"{what}: VMAs without the 'uw' VmFlag in /proc/{(ProcessId > 0 ? ProcessId : "self")}/smaps: {string.Join(", ", missing.Take(4))}; {todo}";
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return $"{what} (check the 'uw' VmFlag in /proc/PID/smaps); {todo}";
    }

    public void Dispose() => _pagemap.Dispose();
}
