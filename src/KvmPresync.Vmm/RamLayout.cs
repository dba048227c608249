using KvmPresync.Memory;

namespace KvmPresync.Vmm;

/// <summary>
/// Where a guest's RAM goes in guest-physical space, as QEMU's pc machine and Firecracker lay it out: up to the
/// low-memory top in slot 0 at GPA 0, the rest in slot 1 from 4 GiB (<see cref="GuestAbi.HighMemoryGpa"/>), so the
/// range between the low top and 4 GiB stays a hole (MMIO / PCI on a real machine). A guest no larger than the low
/// top has one slot.
/// </summary>
public static class RamLayout
{
    /// <summary>The default low-memory top: 3 GiB, what QEMU's pc machine uses for guests above 3.5 GiB.</summary>
    public const long DefaultLowMemoryTop = 3L << 30;

    /// <summary>Smallest low-memory top: the boot layout, the image and the start of the heap live in slot 0.</summary>
    public const long MinLowMemoryTop = 8L << 20;

    /// <summary>Slot ids of the low and high RAM blocks.</summary>
    public const uint LowSlotId = 0, HighSlotId = 1;

    private const long TwoMiB = 2L << 20;

    /// <summary>The slots for <paramref name="memorySize"/> bytes of RAM with the low-memory top at <paramref name="lowMemoryTop"/>.</summary>
    public static IReadOnlyList<RamSlot> Plan(long memorySize, long lowMemoryTop)
    {
        if (memorySize <= 0 || memorySize % 4096 != 0)
            throw new ArgumentOutOfRangeException(nameof(memorySize), memorySize, "guest memory must be a positive multiple of 4096 bytes");
        if (lowMemoryTop < MinLowMemoryTop || lowMemoryTop % TwoMiB != 0 || (ulong)lowMemoryTop > GuestAbi.HighMemoryGpa)
            throw new ArgumentOutOfRangeException(nameof(lowMemoryTop), lowMemoryTop,
                $"the low-memory top must be 2 MiB aligned, at least {MinLowMemoryTop >> 20} MiB and at most 4 GiB");
        if (memorySize <= lowMemoryTop) return [new RamSlot(LowSlotId, 0, memorySize)];
        return [new RamSlot(LowSlotId, 0, lowMemoryTop), new RamSlot(HighSlotId, GuestAbi.HighMemoryGpa, memorySize - lowMemoryTop)];
    }

    /// <summary>
    /// Where the guest's heap starts for an image of <paramref name="imageLength"/> bytes: the first 2 MiB boundary at least
    /// 2 MiB past the image's end (room for its .bss).
    /// </summary>
    public static ulong HeapStart(long imageLength) =>
        (GuestAbi.LoadGpa + (ulong)imageLength + (ulong)TwoMiB + (ulong)TwoMiB - 1) / (ulong)TwoMiB * (ulong)TwoMiB;

    /// <summary>Allocates memory (memfd) for each slot; the map owns it.</summary>
    public static GuestMemoryMap Allocate(IEnumerable<RamSlot> slots, bool hugePages = false)
    {
        ArgumentNullException.ThrowIfNull(slots);
        var regions = new List<GuestRegion>();
        try
        {
            foreach (RamSlot s in slots)
                regions.Add(new GuestRegion(s.SlotId, s.GuestPhysicalAddress, GuestMemory.Create(s.SizeBytes, hugePages)));
            return new GuestMemoryMap(regions, ownsMemory: true);
        }
        catch
        {
            foreach (GuestRegion r in regions) r.Memory.Dispose();
            throw;
        }
    }

    /// <summary>
    /// True when <paramref name="memory"/>'s regions are exactly <paramref name="slots"/>: same order, ids, addresses and sizes.
    /// Allocates nothing (no LINQ, no comparer): <see cref="Machine.Restore(MachineShell, MachineSnapshot)"/> runs it inside a
    /// migration's downtime.
    /// </summary>
    public static bool Matches(IReadOnlyList<RamSlot> slots, GuestMemoryMap memory)
    {
        ArgumentNullException.ThrowIfNull(slots);
        ArgumentNullException.ThrowIfNull(memory);
        if (slots.Count != memory.Regions.Count) return false;
        for (int i = 0; i < slots.Count; i++)
        {
            GuestRegion r = memory.Regions[i];
            if (slots[i] != new RamSlot(r.SlotId, r.GuestPhysicalAddress, r.Memory.Size)) return false;
        }
        return true;
    }

    /// <summary>
    /// The low-memory top for which <see cref="Plan"/> lays out <paramref name="memory"/>'s regions exactly as they are
    /// (region 0's size when there are two; for one region the default top, or the region rounded up to 2 MiB when it is
    /// larger), or null when no top does (memory not laid out by this class).
    /// </summary>
    public static long? LowMemoryTopOf(GuestMemoryMap memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        long size = memory.SizeBytes;
        long top = memory.Regions.Count > 1
            ? memory.Regions[0].Memory.Size
            : Math.Max(DefaultLowMemoryTop, (size + TwoMiB - 1) / TwoMiB * TwoMiB);
        if (size <= 0 || size % 4096 != 0 || top < MinLowMemoryTop || top % TwoMiB != 0 || (ulong)top > GuestAbi.HighMemoryGpa)
            return null;
        return Matches(Plan(size, top), memory) ? top : null;
    }

    /// <summary>The slots of <paramref name="memory"/>, in its order.</summary>
    public static IReadOnlyList<RamSlot> SlotsOf(GuestMemoryMap memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        return memory.Regions.Select(r => new RamSlot(r.SlotId, r.GuestPhysicalAddress, r.Memory.Size)).ToArray();
    }
}
