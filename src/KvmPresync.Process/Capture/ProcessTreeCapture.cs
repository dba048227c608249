using System.Diagnostics;
using System.Globalization;
using KvmPresync.ProcessMemory.Interop;

namespace KvmPresync.ProcessMemory.Capture;

/// <summary>
/// Exact write tracking of a process and all its descendants (a forking server: PostgreSQL's backends), each started
/// under the preload library (<see cref="TrackedCommand"/>). Each <see cref="Harvest"/> finds the tree in /proc (every
/// process whose parent chain reaches the root, and every one seen before that still lives, reparented or not), scans
/// and re-arms each one's written pages (<see cref="TrackedProcess"/>) and numbers them in one compact page space
/// (<see cref="FirstWritePageSpace"/>): a page of a shared mapping is one page whichever processes wrote it.
/// </summary>
/// <remarks>
/// Not thread safe: one caller drives <see cref="Harvest"/>, <see cref="SampleResidentKib"/> and <see cref="Terminate"/>.
/// Writes of a process in its last interval before it exits are lost with its memory.
/// </remarks>
public sealed class ProcessTreeCapture
{
    private readonly List<TrackedProcess> _processes = [];
    private readonly TrackerStatusFile? _status;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly int _pageSize = Environment.SystemPageSize;
    private readonly PageRegion[] _vec = new PageRegion[512]; // runs per PAGEMAP_SCAN call, shared by every process's scan
    private readonly Dictionary<PageIdentity, string> _written = []; // one harvest's pages, cleared by the next

    /// <param name="rootPid">The command's process.</param>
    /// <param name="status">The preload library's status file, to tell processes it never reached (null: not checked).</param>
    /// <param name="registrationTimeout">How long a new process may take to announce itself (default 2 s).</param>
    public ProcessTreeCapture(int rootPid, TrackerStatusFile? status, TimeSpan? registrationTimeout = null)
    {
        RootPid = rootPid;
        _status = status;
        RegistrationTimeout = registrationTimeout ?? TimeSpan.FromSeconds(2);
    }

    public int RootPid { get; }

    public TimeSpan RegistrationTimeout { get; }

    /// <summary>The page space: identities, spaces, per-mapping counts.</summary>
    public FirstWritePageSpace Space { get; } = new();

    /// <summary>Every address space seen, in order (an exec'd program is a new entry with the same pid).</summary>
    public IReadOnlyList<TrackedProcess> Processes => _processes;

    /// <summary>Time since the capture started.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>The root is gone (exited, or a zombie waiting for its parent).</summary>
    public bool RootExited => !ProcessEntry.TryRead(RootPid, out ProcessEntry e) || e.IsZombie;

    /// <summary>The tracked processes alive at the last harvest.</summary>
    public int Live => _processes.Count(p => !p.Gone);

    /// <summary>Scans every process of the tree once: the pages written since the previous harvest, re-armed.</summary>
    public CaptureInterval Harvest()
    {
        var notices = new List<string>();
        Discover();
        if (_status is not null)
        {
            foreach (string e in _status.Poll()) notices.Add($"tracker: {e}");
            CheckAnnounced(notices);
        }
        _written.Clear();
        int scanned = 0;
        foreach (TrackedProcess p in _processes)
        {
            if (p.Gone) continue;
            if (p.Scan(Space, _written, _vec, _pageSize)) scanned++;
            else p.Gone = true;
        }
        TimeSpan time = _clock.Elapsed;
        return new CaptureInterval(time, Space.Assign(_written), scanned, notices);
    }

    /// <summary>Sum of Rss over the live tracked processes (<c>/proc/PID/smaps_rollup</c>), in KiB.</summary>
    public long SampleResidentKib()
    {
        long sum = 0;
        foreach (TrackedProcess p in _processes)
        {
            if (p.Gone) continue;
            try
            {
                foreach (string line in File.ReadLines($"/proc/{p.Pid.ToString(CultureInfo.InvariantCulture)}/smaps_rollup"))
                {
                    if (!line.StartsWith("Rss:", StringComparison.Ordinal)) continue;
                    sum += long.Parse(line.AsSpan(4).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
                    break;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return sum;
    }

    /// <summary>
    /// Ends the tree: SIGTERM to every live tracked process (the root first), SIGKILL to those still there after
    /// <paramref name="grace"/>. Returns how many needed SIGKILL.
    /// </summary>
    public int Terminate(TimeSpan grace)
    {
        Discover();
        List<TrackedProcess> live = _processes.Where(p => !p.Gone && IsSame(p)).OrderBy(p => p.Pid == RootPid ? 0 : 1).ToList();
        foreach (TrackedProcess p in live) ProcessLibc.Kill(p.Pid, ProcessLibc.SigTerm);
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < grace && live.Any(IsSame)) Thread.Sleep(20);
        int killed = 0;
        foreach (TrackedProcess p in live.Where(IsSame))
        {
            if (ProcessLibc.Kill(p.Pid, ProcessLibc.SigKill) == 0) killed++;
        }
        return killed;
    }

    private static bool IsSame(TrackedProcess p) => ProcessEntry.TryRead(p.Pid, out ProcessEntry e) && p.Matches(e) && !e.IsZombie;

    /// <summary>Adds the tree's processes not seen before; marks the ones gone or exec'd (an exec is a new address space).</summary>
    private void Discover()
    {
        List<ProcessEntry> all = ProcessEntry.ReadAll();
        var byPid = all.ToDictionary(e => e.Pid);
        var known = new HashSet<int>();
        foreach (TrackedProcess p in _processes)
        {
            if (p.Gone) continue;
            if (byPid.TryGetValue(p.Pid, out ProcessEntry e) && p.Matches(e) && !e.IsZombie) known.Add(p.Pid);
            else p.Gone = true;
        }
        // seeded with every live tracked process too: a child of one that was reparented (its parent exited) is still found
        foreach (ProcessEntry e in ProcessEntry.DescendantsOf(known.Append(RootPid), all))
        {
            if (known.Contains(e.Pid) || e.IsZombie) continue;
            int instance = 1 + _processes.Count(p => p.Pid == e.Pid && p.StartTime == e.StartTime);
            _processes.Add(new TrackedProcess(_processes.Count, e, instance, _clock.Elapsed));
        }
    }

    private void CheckAnnounced(List<string> notices)
    {
        foreach (TrackedProcess p in _processes)
        {
            if (p.Announced || p.Untracked) continue;
            if (_status!.Announcements(p.Pid) >= p.Instance) p.Announced = true;
            else if (_clock.Elapsed - p.FirstSeen > RegistrationTimeout && !p.Gone)
            {
                p.Untracked = true;
                notices.Add($"pid {p.Pid} ({p.Name}) is not tracked: the preload library did not announce itself in it within " +
                            $"{RegistrationTimeout.TotalSeconds:0.#} s — a statically linked or setuid program ignores LD_PRELOAD, so its writes are missing from the trace");
            }
        }
    }
}
