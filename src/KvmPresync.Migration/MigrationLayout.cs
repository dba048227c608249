using KvmPresync.Memory;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>Between a guest's <see cref="GuestMemoryMap"/> and the <see cref="MemoryLayout"/> the wire announces.</summary>
internal static class MigrationLayout
{
    /// <summary>The layout announcing <paramref name="memory"/>'s regions, in the map's order (so linear page indices agree).</summary>
    public static MemoryLayout Of(GuestMemoryMap memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        return MemoryLayout.Create(memory.PageSize,
            memory.Regions.Select(r => new LayoutSlot(r.SlotId, r.GuestPhysicalAddress, (ulong)r.Memory.Size)));
    }

    /// <summary>Null when <paramref name="memory"/> has exactly the announced slots in the announced order; otherwise why not.</summary>
    public static string? Mismatch(MemoryLayout layout, GuestMemoryMap memory)
    {
        if (memory.PageSize != layout.PageSize)
            return $"the target's page size {memory.PageSize} differs from the announced {layout.PageSize}";
        if (memory.Regions.Count != layout.Slots.Count)
            return $"the target has {memory.Regions.Count} memory region(s); the sender announced {layout.Slots.Count}";
        for (int i = 0; i < layout.Slots.Count; i++)
        {
            LayoutSlot s = layout.Slots[i];
            GuestRegion r = memory.Regions[i];
            if (r.SlotId != s.SlotId || r.GuestPhysicalAddress != s.GuestPhysicalAddress || (ulong)r.Memory.Size != s.SizeBytes)
                return $"the target's region {i} is {r}; the sender announced {s}";
        }
        return null;
    }
}
