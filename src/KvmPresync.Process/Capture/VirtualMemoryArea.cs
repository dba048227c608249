using MapsLine = KvmPresync.ProcessMemory.ProcessMemoryRegion.MapsLine;

namespace KvmPresync.ProcessMemory.Capture;

/// <summary>
/// A process's mappings (<see cref="ProcessMemoryRegion.ReadMaps"/>) as a list in address order, to find the one
/// holding an address by binary search.
/// </summary>
internal static class VirtualMemoryArea
{
    /// <summary>The mappings of <paramref name="pid"/> in address order; empty when it is gone.</summary>
    public static List<MapsLine> Read(int pid)
    {
        var list = new List<MapsLine>();
        try
        {
            list.AddRange(ProcessMemoryRegion.ReadMaps(pid));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // gone
        return list;
    }

    /// <summary>Index of the area holding <paramref name="address"/> in <paramref name="areas"/> (address order), or -1.</summary>
    public static int Find(List<MapsLine> areas, ulong address)
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
