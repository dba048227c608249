using System.Globalization;

namespace KvmPresync.ProcessMemory;

/// <summary>
/// One tracked address range of a process, page aligned: [<see cref="Start"/>, <see cref="End"/>). A
/// <see cref="ProcessDirtyPageSource"/> numbers the pages of its regions one after the other (the first region's pages,
/// then the next's), as <c>GuestMemoryMap</c> numbers a guest's RAM regions.
/// </summary>
/// <param name="Name">What is mapped there (a path from /proc/PID/maps, or a label); informational.</param>
public sealed record ProcessMemoryRegion(ulong Start, ulong End, string? Name = null)
{
    public ulong Length => End - Start;

    public long PageCount(int pageSize) => (long)(Length / (ulong)pageSize);

    public override string ToString() => $"[0x{Start:x}, 0x{End:x}){(Name is null ? "" : " " + Name)}";

    /// <summary>
    /// The mappings of <paramref name="path"/> in process <paramref name="pid"/> (QEMU's memory-backend-file), from
    /// /proc/PID/maps, adjacent ones merged, in address order. Empty when the process has not mapped it (yet).
    /// </summary>
    public static IReadOnlyList<ProcessMemoryRegion> FindMappings(int pid, string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var found = new List<ProcessMemoryRegion>();
        foreach (MapsLine line in ReadMaps(pid))
        {
            if (line.Name != path) continue;
            if (found.Count > 0 && found[^1].End == line.Start)
                found[^1] = found[^1] with { End = line.End };
            else
                found.Add(new ProcessMemoryRegion(line.Start, line.End, path));
        }
        return found;
    }

    /// <summary>
    /// Whether every VMA of process <paramref name="pid"/> overlapping this region is registered for userfaultfd write
    /// protection: its VmFlags in /proc/PID/smaps carry <c>uw</c>. Lists the ranges that are not.
    /// </summary>
    public bool IsRegistered(int pid, out IReadOnlyList<string> unregistered)
    {
        var missing = new List<string>();
        string file = $"/proc/{(pid > 0 ? pid.ToString(CultureInfo.InvariantCulture) : "self")}/smaps";
        ulong s = 0, e = 0;
        foreach (string text in File.ReadLines(file))
        {
            if (TryParseMapsLine(text, out MapsLine ml)) { s = ml.Start; e = ml.End; continue; }
            if (!text.StartsWith("VmFlags:", StringComparison.Ordinal) || e <= Start || s >= End) continue;
            if (!text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains("uw"))
                missing.Add($"[0x{s:x}, 0x{e:x})");
        }
        unregistered = missing;
        return missing.Count == 0;
    }

    /// <summary>
    /// One line of /proc/PID/maps: range, permissions ("rw-s"…), file offset, device ((major &lt;&lt; 32) | minor) and inode
    /// of what is mapped (shmem, memfd and SysV segments have an inode too), and the mapped path or label.
    /// </summary>
    public readonly record struct MapsLine(ulong Start, ulong End, string Perms, ulong Offset, ulong Device, ulong Inode, string? Name)
    {
        /// <summary>A shared mapping (<c>rw-s</c>): its pages are the object's, the same in every process mapping it.</summary>
        public bool Shared => Perms.Length > 3 && Perms[3] == 's';
    }

    /// <summary>The mappings of process <paramref name="pid"/> (0 = this process), in address order.</summary>
    public static IEnumerable<MapsLine> ReadMaps(int pid)
    {
        string file = $"/proc/{(pid > 0 ? pid.ToString(CultureInfo.InvariantCulture) : "self")}/maps";
        foreach (string text in File.ReadLines(file))
            if (TryParseMapsLine(text, out MapsLine line)) yield return line;
    }

    /// <summary>Parses "start-end perms offset major:minor inode [name]"; false for smaps' field lines.</summary>
    internal static bool TryParseMapsLine(string text, out MapsLine line)
    {
        line = default;
        int dash = text.IndexOf('-'), space = text.IndexOf(' ');
        if (dash <= 0 || space < dash) return false;
        const NumberStyles hex = NumberStyles.HexNumber;
        CultureInfo c = CultureInfo.InvariantCulture;
        if (!ulong.TryParse(text.AsSpan(0, dash), hex, c, out ulong start)) return false;
        if (!ulong.TryParse(text.AsSpan(dash + 1, space - dash - 1), hex, c, out ulong end)) return false;
        string[] parts = text.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 5) return false;
        int colon = parts[3].IndexOf(':');
        if (colon <= 0 || !ulong.TryParse(parts[2], hex, c, out ulong offset) || !ulong.TryParse(parts[3].AsSpan(0, colon), hex, c, out ulong major)
            || !ulong.TryParse(parts[3].AsSpan(colon + 1), hex, c, out ulong minor) || !ulong.TryParse(parts[4], NumberStyles.None, c, out ulong inode))
            return false;
        string? name = parts.Length == 6 ? parts[5].Trim() : null;
        line = new MapsLine(start, end, parts[1], offset, (major << 32) | minor, inode, string.IsNullOrEmpty(name) ? null : name);
        return true;
    }
}
