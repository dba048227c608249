using Microsoft.Win32.SafeHandles;
using MapsLine = KvmPresync.ProcessMemory.ProcessMemoryRegion.MapsLine;

namespace KvmPresync.ProcessMemory.Capture;

/// <summary>
/// Samples the contents of the pages a captured program writes, for a page-content corpus (what compression is measured
/// on). Every page a harvest reports is one item of a stream; a reservoir (algorithm R, seeded) keeps a uniform sample of
/// <see cref="Capacity"/> of them, and a page's bytes are read from <c>/proc/PID/mem</c> when it enters the reservoir —
/// right after the interval it was written in, as a presync would send it. A private page is read at its virtual address
/// in its process; a shared one (file, shmem, SysV segment) through the mapping of any live tracked process that maps it.
/// All-zero pages are left out (the protocol sends them as a flag, never compressed), as are pages that cannot be read
/// (the process exited or unmapped them); both are counted.
/// </summary>
public sealed class PageSampler : IDisposable
{
    private readonly int _pageSize;
    private readonly byte[] _pages;
    private readonly string[] _regions;
    private readonly byte[] _scratch;
    private readonly Random _random;
    private readonly Dictionary<int, SafeFileHandle?> _mem = [];
    private readonly Dictionary<int, List<MapsLine>> _maps = [];
    private int _filled;

    public PageSampler(int capacity, int pageSize, int seed = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _pageSize = pageSize;
        _pages = new byte[capacity * pageSize];
        _regions = new string[capacity];
        _scratch = new byte[pageSize];
        _random = new Random(seed);
    }

    public int Capacity { get; }

    /// <summary>Written pages offered (each interval's pages; a page written in two intervals counts twice).</summary>
    public long Offered { get; private set; }

    public long ZeroPages { get; private set; }
    public long Unreadable { get; private set; }

    /// <summary>Pages held now (≤ <see cref="Capacity"/>).</summary>
    public int Count => _filled;

    /// <summary>Offers one interval's written pages (compact indexes into <paramref name="capture"/>'s page space).</summary>
    public void Offer(ProcessTreeCapture capture, long[] pages)
    {
        _maps.Clear(); // mappings change between intervals
        foreach (long index in pages)
        {
            Offered++;
            int slot;
            if (_filled < Capacity) slot = _filled;
            else
            {
                long j = _random.NextInt64(Offered);
                if (j >= Capacity) continue;
                slot = (int)j;
            }
            CapturedPage page = capture.Space.PageAt(index);
            if (!TryRead(capture, page, _scratch)) { Unreadable++; continue; }
            if (_scratch.AsSpan().IndexOfAnyExcept((byte)0) < 0) { ZeroPages++; continue; }
            _scratch.CopyTo(_pages.AsSpan(slot * _pageSize, _pageSize));
            _regions[slot] = page.Region;
            if (slot == _filled) _filled++;
        }
    }

    private bool TryRead(ProcessTreeCapture capture, CapturedPage page, Span<byte> into)
    {
        ulong ps = (ulong)_pageSize;
        if (!page.Space.Shared) return TryRead(page.Space.ProcessId, page.Identity.Page * ps, into);
        foreach (TrackedProcess p in capture.Processes)
        {
            if (p.Gone) continue;
            if (!_maps.TryGetValue(p.Pid, out List<MapsLine>? maps)) _maps[p.Pid] = maps = VirtualMemoryArea.Read(p.Pid);
            ulong offset = page.Identity.Page * ps;
            foreach (MapsLine m in maps)
            {
                if (m.Inode != page.Space.Inode || m.Device != page.Space.Device || offset < m.Offset || offset - m.Offset >= m.End - m.Start) continue;
                if (TryRead(p.Pid, m.Start + (offset - m.Offset), into)) return true;
            }
        }
        return false;
    }

    private bool TryRead(int pid, ulong address, Span<byte> into)
    {
        if (!_mem.TryGetValue(pid, out SafeFileHandle? handle))
        {
            try
            {
                handle = File.OpenHandle($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                handle = null; // gone, or not ours to read
            }
            _mem[pid] = handle;
        }
        if (handle is null || address > long.MaxValue) return false;
        try
        {
            return RandomAccess.Read(handle, into, (long)address) == into.Length;
        }
        catch (IOException)
        {
            return false; // unmapped meanwhile (EIO)
        }
    }

    /// <summary>
    /// Writes the sample: the pages back to back (<paramref name="path"/>, Count × page size bytes) and a text summary next
    /// to it (<c>path.txt</c>: counts and pages per mapping name).
    /// </summary>
    public void Write(string path, string workload)
    {
        File.WriteAllBytes(path, _pages.AsSpan(0, _filled * _pageSize).ToArray());
        var lines = new List<string>
        {
            $"workload {workload}",
            $"pages {_filled} of {_pageSize} bytes, a uniform sample (reservoir, seed 1) of {Offered} written pages offered over the capture's intervals",
            $"left out: {ZeroPages} all-zero, {Unreadable} unreadable",
        };
        lines.AddRange(_regions.Take(_filled).GroupBy(r => r).OrderByDescending(g => g.Count()).Select(g => $"region {g.Count(),5} {g.Key}"));
        File.WriteAllLines(path + ".txt", lines);
    }

    public void Dispose()
    {
        foreach (SafeFileHandle? h in _mem.Values) h?.Dispose();
        _mem.Clear();
    }
}
