using KvmPresync.Memory;
namespace KvmPresync.Memory;

/// <summary>One block of guest RAM at a guest-physical address (a KVM memory slot, a QEMU RAM block).</summary>
/// <param name="SlotId">Identifier of the block, unique within its map (the KVM slot id, the wire's slot id).</param>
/// <param name="GuestPhysicalAddress">Where the block starts in guest-physical space; page-aligned.</param>
/// <param name="Memory">The host mapping that holds the block's bytes.</param>
public readonly record struct GuestRegion(uint SlotId, ulong GuestPhysicalAddress, GuestMemory Memory)
{
    public long PageCount => Memory.PageCount;

    /// <summary>First guest-physical address past the region.</summary>
    public ulong EndAddress => GuestPhysicalAddress + (ulong)Memory.Size;

    public override string ToString() => $"slot {SlotId} [0x{GuestPhysicalAddress:x}, 0x{EndAddress:x})";
}

/// <summary>
/// All of a guest's RAM, of any size, as one page space: regions (slots) in the order given, their pages numbered
/// 0 .. <see cref="PageCount"/>-1 region after region — the index every <see cref="DirtyBitmap"/>, digest and dirty
/// source of the guest uses. The one way sender and receiver reach guest memory: pages are spans into the mappings,
/// and <see cref="PageMemory"/> hands out <see cref="Memory{T}"/> views (over native memory managers of at most
/// 1 GiB each, a <see cref="Memory{T}"/> length limit) for zero-copy gather I/O. Regions may leave holes in
/// guest-physical space (e.g. the PCI hole below 4 GiB). Does not own the memory unless told to.
/// </summary>
public sealed class GuestMemoryMap : IDisposable
{
    /// <summary>Bytes covered by one <see cref="UnmanagedMemoryManager"/>.</summary>
    internal const long ChunkBytes = 1L << 30;

    private readonly GuestRegion[] _regions;
    private readonly long[] _firstIndex;               // linear index of each region's first page
    private readonly UnmanagedMemoryManager[][] _chunks;
    private readonly int[] _byAddress;                  // region indices sorted by guest-physical address
    private readonly bool _ownsMemory;

    /// <param name="regions">The guest's RAM blocks; same page size, page-aligned, unique ids, no overlap.</param>
    /// <param name="ownsMemory">Dispose the regions' <see cref="GuestMemory"/> with the map.</param>
    public GuestMemoryMap(IEnumerable<GuestRegion> regions, bool ownsMemory = false)
    {
        ArgumentNullException.ThrowIfNull(regions);
        _regions = regions.ToArray();
        if (_regions.Length == 0) throw new ArgumentException("a guest memory map needs at least one region", nameof(regions));
        PageSize = _regions[0].Memory.PageSize;
        var ids = new HashSet<uint>();
        foreach (GuestRegion r in _regions)
        {
            if (r.Memory is null) throw new ArgumentException($"{r.SlotId}: region without memory", nameof(regions));
            if (r.Memory.PageSize != PageSize)
                throw new ArgumentException($"{r}: page size {r.Memory.PageSize} differs from the map's {PageSize}", nameof(regions));
            if (r.GuestPhysicalAddress % (ulong)PageSize != 0)
                throw new ArgumentException($"{r}: address is not aligned to the {PageSize}-byte page", nameof(regions));
            if (!ids.Add(r.SlotId)) throw new ArgumentException($"slot id {r.SlotId} appears twice", nameof(regions));
        }
        _byAddress = Enumerable.Range(0, _regions.Length).OrderBy(i => _regions[i].GuestPhysicalAddress).ToArray();
        for (int k = 1; k < _byAddress.Length; k++)
        {
            GuestRegion prev = _regions[_byAddress[k - 1]], cur = _regions[_byAddress[k]];
            if (cur.GuestPhysicalAddress < prev.EndAddress) throw new ArgumentException($"{cur} overlaps {prev}", nameof(regions));
        }
        _firstIndex = new long[_regions.Length];
        _chunks = new UnmanagedMemoryManager[_regions.Length][];
        long index = 0;
        for (int i = 0; i < _regions.Length; i++)
        {
            _firstIndex[i] = index;
            index += _regions[i].PageCount;
            GuestMemory m = _regions[i].Memory;
            _chunks[i] = new UnmanagedMemoryManager[(m.Size + ChunkBytes - 1) / ChunkBytes];
            for (int c = 0; c < _chunks[i].Length; c++)
                _chunks[i][c] = new UnmanagedMemoryManager(m.Address + (nint)(c * ChunkBytes), (int)Math.Min(ChunkBytes, m.Size - c * ChunkBytes));
        }
        PageCount = index;
        _ownsMemory = ownsMemory;
    }

    /// <summary>A map of one region at guest-physical 0 (slot 0).</summary>
    public static GuestMemoryMap Single(GuestMemory memory, bool ownsMemory = false) => new([new GuestRegion(0, 0, memory)], ownsMemory);

    /// <summary>Regions in index order.</summary>
    public IReadOnlyList<GuestRegion> Regions => _regions;

    public int PageSize { get; }

    public long PageCount { get; }

    /// <summary>Bytes of RAM over all regions (holes excluded).</summary>
    public long SizeBytes => PageCount * PageSize;

    /// <summary>The bytes of page <paramref name="index"/>, a span into the mapping.</summary>
    public Span<byte> Page(long index)
    {
        (int region, long page) = Locate(index);
        return _regions[region].Memory.Page(page);
    }

    /// <summary>Page <paramref name="index"/> as <see cref="Memory{T}"/> over the mapping (no copy), for gather I/O.</summary>
    public Memory<byte> PageMemory(long index)
    {
        (int region, long page) = Locate(index);
        long offset = page * PageSize;
        return _chunks[region][offset / ChunkBytes].Memory.Slice((int)(offset % ChunkBytes), PageSize);
    }

    /// <summary>
    /// <paramref name="count"/> pages from <paramref name="first"/> as one span; they must lie in one region and one
    /// 1 GiB chunk (see <see cref="ContiguousPages"/>).
    /// </summary>
    public Span<byte> Pages(long first, int count)
    {
        if (count < 0 || count > ContiguousPages(first))
            throw new ArgumentOutOfRangeException(nameof(count), count, $"pages [{first}, +{count}) cross a region or 1 GiB chunk boundary");
        (int region, long page) = Locate(first);
        return _regions[region].Memory.Slice(page * PageSize, count * PageSize);
    }

    /// <summary>How many pages from <paramref name="first"/> on lie in the same region and 1 GiB chunk.</summary>
    public int ContiguousPages(long first)
    {
        (int region, long page) = Locate(first);
        long pagesPerChunk = ChunkBytes / PageSize;
        long toChunkEnd = pagesPerChunk - page % pagesPerChunk;
        return (int)Math.Min(toChunkEnd, _regions[region].PageCount - page);
    }

    /// <summary>Guest-physical address of page <paramref name="index"/>.</summary>
    public ulong GuestPhysicalAddressOf(long index)
    {
        (int region, long page) = Locate(index);
        return _regions[region].GuestPhysicalAddress + (ulong)(page * PageSize);
    }

    /// <summary>The page index of a guest-physical address; false inside a hole or past the end.</summary>
    public bool TryIndexOf(ulong guestPhysicalAddress, out long index)
    {
        int lo = 0, hi = _byAddress.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            GuestRegion r = _regions[_byAddress[mid]];
            if (guestPhysicalAddress < r.GuestPhysicalAddress) hi = mid - 1;
            else if (guestPhysicalAddress >= r.EndAddress) lo = mid + 1;
            else
            {
                index = _firstIndex[_byAddress[mid]] + (long)((guestPhysicalAddress - r.GuestPhysicalAddress) / (ulong)PageSize);
                return true;
            }
        }
        index = -1;
        return false;
    }

    /// <summary>Index of the first page of region <paramref name="region"/> (index into <see cref="Regions"/>).</summary>
    public long FirstIndexOf(int region) => _firstIndex[region];

    /// <summary>The region holding page <paramref name="index"/> and the page's number inside it.</summary>
    public (int Region, long PageInRegion) Locate(long index)
    {
        if ((ulong)index >= (ulong)PageCount)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"page outside guest memory of {PageCount} pages");
        int region = 0;
        if (_regions.Length > 1)
        {
            region = Array.BinarySearch(_firstIndex, index);
            if (region < 0) region = ~region - 1;
        }
        return (region, index - _firstIndex[region]);
    }

    public void Dispose()
    {
        if (!_ownsMemory) return;
        foreach (GuestRegion r in _regions) r.Memory.Dispose();
    }

    public override string ToString() => $"{_regions.Length} region(s), {PageCount} pages of {PageSize} bytes";
}
