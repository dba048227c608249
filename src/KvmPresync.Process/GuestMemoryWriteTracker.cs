using KvmPresync.Core;
using KvmPresync.Memory;

namespace KvmPresync.ProcessMemory;

/// <summary>
/// Every page written to a guest memory map of THIS process, by anyone writing through its mapping (our own code, the
/// kernel on our behalf — a socket receive, KVM for a running guest — or a stray write), as an <see cref="IDirtyPageSource"/>:
/// the map's regions registered with a userfaultfd in async write-protect mode and write-protected at once (the memory is
/// taken as it is now), harvested with PAGEMAP_SCAN on /proc/self/pagemap (<see cref="ProcessDirtyPageSource"/>). A migration
/// destination uses it to re-hash what was written since its last look (<c>ReceiverOptions.TrackWrites</c>).
/// </summary>
/// <remarks>
/// Writes through another mapping of the same memfd are not seen (write protection is per page table), and a change that
/// is no write through a mapping (a bit flip in RAM) is not either. Disposing closes the userfaultfd, which drops the
/// registration. Needs Linux ≥ 6.7 (<see cref="UserfaultfdHandle.IsAvailable"/>).
/// </remarks>
public sealed class GuestMemoryWriteTracker : IDirtyPageSource, IDisposable
{
    private readonly UserfaultfdHandle _uffd;
    private readonly ProcessDirtyPageSource _scan;

    private GuestMemoryWriteTracker(UserfaultfdHandle uffd, ProcessDirtyPageSource scan)
    {
        _uffd = uffd;
        _scan = scan;
    }

    /// <summary>Registers and write-protects every region of <paramref name="memory"/> (in its page order).</summary>
    public static GuestMemoryWriteTracker Track(GuestMemoryMap memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (memory.PageSize != Environment.SystemPageSize)
            throw new ArgumentException($"memory of {memory.PageSize}-byte pages: write tracking works in host pages ({Environment.SystemPageSize} bytes)", nameof(memory));
        UserfaultfdHandle uffd = UserfaultfdHandle.Open();
        try
        {
            var regions = new List<ProcessMemoryRegion>(memory.Regions.Count);
            foreach (GuestRegion r in memory.Regions)
            {
                uffd.RegisterWriteProtect(r.Memory.Address, r.Memory.Size, arm: true);
                regions.Add(new ProcessMemoryRegion((ulong)r.Memory.Address, (ulong)r.Memory.Address + (ulong)r.Memory.Size, $"slot {r.SlotId}"));
            }
            return new GuestMemoryWriteTracker(uffd, new ProcessDirtyPageSource(0, regions));
        }
        catch
        {
            uffd.Dispose();
            throw;
        }
    }

    public long PageCount => _scan.PageCount;

    public int PageSize => _scan.PageSize;

    /// <summary>ORs the pages written since the previous harvest (or since <see cref="Track"/>) into <paramref name="into"/> and protects them again.</summary>
    public DirtyHarvest Harvest(DirtyBitmap into) => _scan.Harvest(into);

    public void Dispose()
    {
        _scan.Dispose();
        _uffd.Dispose();
    }
}
