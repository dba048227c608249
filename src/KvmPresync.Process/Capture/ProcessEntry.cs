using System.Globalization;

namespace KvmPresync.ProcessMemory.Capture;

/// <summary>
/// One process as <c>/proc/PID/stat</c> shows it. <see cref="StartTime"/> tells a reused pid apart; <see cref="ArgStart"/>
/// (where its argument strings begin, randomized per exec) tells an exec'd program apart from the one before it.
/// </summary>
public readonly record struct ProcessEntry(int Pid, int ParentPid, string Name, char State, ulong StartTime, ulong ArgStart)
{
    public bool IsZombie => State is 'Z' or 'X';

    /// <summary>Reads <c>/proc/<paramref name="pid"/>/stat</c>; false when the process is gone.</summary>
    public static bool TryRead(int pid, out ProcessEntry entry)
    {
        entry = default;
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        return TryParse(text, out entry);
    }

    /// <summary>Parses "pid (comm) state ppid … starttime(22) … arg_start(48) …"; comm may hold spaces and parentheses.</summary>
    internal static bool TryParse(string text, out ProcessEntry entry)
    {
        entry = default;
        int open = text.IndexOf('('), close = text.LastIndexOf(')');
        if (open <= 0 || close < open || !int.TryParse(text.AsSpan(0, open).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) return false;
        string[] f = text[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries); // f[0] = field 3 (state)
        if (f.Length < 20 || !int.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out int ppid)) return false;
        ulong start = ulong.Parse(f[19], CultureInfo.InvariantCulture);
        ulong argStart = f.Length > 45 && ulong.TryParse(f[45], NumberStyles.None, CultureInfo.InvariantCulture, out ulong a) ? a : 0;
        entry = new ProcessEntry(pid, ppid, text[(open + 1)..close], f[0][0], start, argStart);
        return true;
    }

    /// <summary>Every process in /proc (a process that exits while it is read is left out).</summary>
    public static List<ProcessEntry> ReadAll()
    {
        var all = new List<ProcessEntry>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            string name = Path.GetFileName(dir);
            if (name.Length == 0 || !char.IsAsciiDigit(name[0]) || !int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            if (TryRead(pid, out ProcessEntry e)) all.Add(e);
        }
        return all;
    }

    /// <summary>The processes of <paramref name="all"/> whose parent chain reaches one of <paramref name="roots"/>, the roots included.</summary>
    public static List<ProcessEntry> DescendantsOf(IEnumerable<int> roots, IReadOnlyList<ProcessEntry> all)
    {
        var parent = new Dictionary<int, int>(all.Count);
        foreach (ProcessEntry e in all) parent[e.Pid] = e.ParentPid;
        var reaches = new Dictionary<int, bool>();
        foreach (int root in roots) reaches[root] = true;
        var result = new List<ProcessEntry>();
        var chain = new List<int>();
        foreach (ProcessEntry e in all)
        {
            chain.Clear();
            int p = e.Pid;
            bool yes;
            while (true)
            {
                if (reaches.TryGetValue(p, out yes)) break;
                if (p <= 1 || !parent.TryGetValue(p, out int pp) || chain.Count > 4096) { yes = false; break; }
                chain.Add(p);
                p = pp;
            }
            foreach (int c in chain) reaches[c] = yes;
            if (yes) result.Add(e);
        }
        return result;
    }
}
