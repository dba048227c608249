using KvmPresync.ProcessMemory.Interop;
using MapsLine = KvmPresync.ProcessMemory.ProcessMemoryRegion.MapsLine;

namespace KvmPresync.ProcessMemory.Capture;

/// <summary>
/// One address space of a captured process tree: a process, or the program it exec'd (a new <see cref="Ordinal"/>).
/// <see cref="Scan"/> runs PAGEMAP_SCAN over its whole address space (VMAs it never registered are skipped), which
/// reports the pages written since the previous scan and write-protects them again in the same call, and turns each
/// written page into its identity with the process's current mappings.
/// </summary>
public sealed class TrackedProcess
{
    private const ulong UserSpaceEnd = 1UL << 56; // above x86-64's 5-level user space; leaves out [vsyscall]
    private int _privateSpace = -1; // its number in the page space, once it wrote a private page

    internal TrackedProcess(int ordinal, ProcessEntry entry, int instance, TimeSpan firstSeen)
    {
        Ordinal = ordinal;
        Pid = entry.Pid;
        Name = entry.Name;
        StartTime = entry.StartTime;
        ArgStart = entry.ArgStart;
        Instance = instance;
        FirstSeen = firstSeen;
    }

    /// <summary>Its number in the capture, in the order first seen (the private space of its pages).</summary>
    public int Ordinal { get; }

    public int Pid { get; }

    /// <summary>The command name (comm) when first seen.</summary>
    public string Name { get; }

    internal ulong StartTime { get; }

    internal ulong ArgStart { get; }

    /// <summary>1 for the first address space seen with this pid, 2 after an exec, …: the announcements it needs.</summary>
    internal int Instance { get; }

    /// <summary>When the capture first saw it.</summary>
    public TimeSpan FirstSeen { get; }

    /// <summary>It ended (or exec'd another program, which is tracked as a new one).</summary>
    public bool Gone { get; internal set; }

    /// <summary>The preload library announced itself in it (see <see cref="TrackerStatusFile"/>).</summary>
    public bool Announced { get; internal set; }

    /// <summary>Not announced within the registration timeout: statically linked, setuid, or started without LD_PRELOAD.</summary>
    public bool Untracked { get; internal set; }

    /// <summary>Pages reported by its scans (page-writes, not distinct pages).</summary>
    public long PagesReported { get; private set; }

    internal bool Matches(ProcessEntry e) => e.Pid == Pid && e.StartTime == StartTime && e.ArgStart == ArgStart;

    /// <summary>
    /// Scans and re-arms its written pages; adds each one's identity (and the name of its mapping) to
    /// <paramref name="written"/>. <paramref name="vec"/> receives each PAGEMAP_SCAN call's runs. False when the process is gone.
    /// </summary>
    internal bool Scan(FirstWritePageSpace space, Dictionary<PageIdentity, string> written, PageRegion[] vec, int pageSize)
    {
        PagemapHandle pagemap;
        try
        {
            pagemap = PagemapHandle.Open(Pid); // opened per scan: after an exec an old descriptor would still see the old memory
        }
        catch (ProcessTrackingException e) when (e.Errno is 2 or 3)
        {
            return false;
        }
        using (pagemap)
        {
            List<MapsLine> areas = VirtualMemoryArea.Read(Pid);
            if (areas.Count == 0) return false;
            ulong start = areas[0].Start, end = areas.Where(a => a.End <= UserSpaceEnd).Select(a => a.End).DefaultIfEmpty(start).Max();
            bool reread = false;
            PagemapWalk walk = pagemap.ScanWritten(start, end, vec, skipUnregistered: true);
            while (walk.Next(out ReadOnlySpan<PageRegion> runs))
            {
                foreach (ref readonly PageRegion run in runs)
                    AddRun(run.Start, run.End, run.Categories, ref areas, ref reread, space, written, pageSize);
            }
            if (walk.Errno is 3 or 2) return false; // ESRCH / ENOENT: exited
            if (walk.Errno != 0) throw pagemap.ScanFailure($"[0x{walk.Position:x}, 0x{end:x})", walk.Errno);
            return true;
        }
    }

    private void AddRun(ulong from, ulong to, ulong categories, ref List<MapsLine> areas, ref bool reread, FirstWritePageSpace space,
        Dictionary<PageIdentity, string> written, int pageSize)
    {
        ulong ps = (ulong)pageSize;
        for (ulong a = from; a < to;)
        {
            int i = VirtualMemoryArea.Find(areas, a);
            if (i < 0 && !reread)
            {
                areas = VirtualMemoryArea.Read(Pid); // mapped after the maps were read
                reread = true;
                i = VirtualMemoryArea.Find(areas, a);
            }
            ulong stop = i < 0 ? to : Math.Min(to, areas[i].End);
            MapsLine? vma = i < 0 ? null : areas[i];
            if ((categories & (ProcessNative.PageIsPresent | ProcessNative.PageIsSwapped)) == 0
                || (vma is { Shared: false } && (categories & (ProcessNative.PageIsFile | ProcessNative.PageIsPfnZero)) != 0))
            {
                // an empty PTE of a range registered unarmed, or a private mapping's page cache or zero page (mapped by a
                // read): re-armed by the scan, but not written
                a = stop;
                continue;
            }
            string region;
            int sp;
            if (vma is { Shared: true } v)
            {
                region = v.Name ?? "[shared anonymous]";
                sp = space.SharedSpaceOf(v.Device, v.Inode, region);
            }
            else
            {
                region = vma?.Name ?? (vma is null ? "[unmapped since]" : "[anonymous]");
                if (_privateSpace < 0) _privateSpace = space.SpaceOf(new MemorySpace(false, 0, 0, Ordinal, Pid, $"{Name}[{Pid}]"));
                sp = _privateSpace;
            }
            for (ulong p = a; p < stop; p += ps)
            {
                ulong page = vma is { Shared: true } s ? s.Offset / ps + (p - s.Start) / ps : p / ps;
                written.TryAdd(new PageIdentity(sp, page), region);
                PagesReported++;
            }
            a = stop;
        }
    }
}
