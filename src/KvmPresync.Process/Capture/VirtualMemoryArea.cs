using System.Globalization;

namespace KvmPresync.ProcessMemory.Capture;

/// <summary>
/// One line of <c>/proc/PID/maps</c> with everything a page's identity needs: the range, whether it is a shared
/// mapping (<c>rw-s</c>), the file offset, device and inode of what is mapped (shmem, memfd and SysV segments have
/// an inode too), and the name.
/// </summary>
public readonly record struct VirtualMemoryArea(ulong Start, ulong End, bool Shared, ulong Offset, ulong Device, ulong Inode, string? Name)
{
    /// <summary>The mappings of <paramref name="pid"/> in address order; empty when it is gone.</summary>
    public static List<VirtualMemoryArea> Read(int pid)
    {
        var list = new List<VirtualMemoryArea>();
        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/maps"))
                if (TryParse(line, out VirtualMemoryArea v)) list.Add(v);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return list;
    }

    /// <summary>Parses "start-end perms offset major:minor inode [name]".</summary>
    internal static bool TryParse(string text, out VirtualMemoryArea vma)
    {
        vma = default;
        string[] p = text.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
        if (p.Length < 5) return false;
        int dash = p[0].IndexOf('-'), colon = p[3].IndexOf(':');
        if (dash <= 0 || colon <= 0 || p[1].Length < 4) return false;
        const NumberStyles hex = NumberStyles.HexNumber;
        var c = CultureInfo.InvariantCulture;
        if (!ulong.TryParse(p[0].AsSpan(0, dash), hex, c, out ulong start) || !ulong.TryParse(p[0].AsSpan(dash + 1), hex, c, out ulong end)
            || !ulong.TryParse(p[2], hex, c, out ulong offset) || !ulong.TryParse(p[3].AsSpan(0, colon), hex, c, out ulong major)
            || !ulong.TryParse(p[3].AsSpan(colon + 1), hex, c, out ulong minor) || !ulong.TryParse(p[4], NumberStyles.None, c, out ulong inode))
            return false;
        string? name = p.Length == 6 ? p[5].Trim() : null;
        vma = new VirtualMemoryArea(start, end, p[1][3] == 's', offset, (major << 32) | minor, inode, string.IsNullOrEmpty(name) ? null : name);
        return true;
    }

    /// <summary>Index of the area holding <paramref name="address"/> in <paramref name="areas"/> (address order), or -1.</summary>
    public static int Find(List<VirtualMemoryArea> areas, ulong address)
    {
        int lo = 0, hi = areas.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (address < areas[mid].Start) hi = mid - 1;
            else if (address >= areas[mid].End) lo = mid + 1;
            else return mid;
        }
        return -1;
    }
}
