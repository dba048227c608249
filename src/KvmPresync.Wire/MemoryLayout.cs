namespace KvmPresync.Wire;

/// <summary>
/// The guest memory layout announced in Hello, validated: page size a power of two in
/// [<see cref="WireLimits.MinPageSize"/>, <see cref="WireLimits.MaxPageSize"/>]; 1..<see cref="WireLimits.MaxSlots"/>
/// slots with unique ids, page-aligned addresses, non-zero sizes that are multiples of the page size, no overlaps;
/// total ≤ <see cref="WireLimits.MaxTotalMemoryBytes"/>. Maps guest page frame numbers (GPA / page size) to
/// slots and offsets and answers whether a page is inside. Immutable.
/// </summary>
public sealed class MemoryLayout
{
    private readonly LayoutSlot[] _slots;      // announced order
    private readonly ulong[] _firstPage;       // sorted by address
    private readonly ulong[] _endPage;
    private readonly int[] _slotIndex;
    private readonly long[] _linearBase;       // linear index of each slot's first page, by announced order

    private MemoryLayout(int pageSize, LayoutSlot[] slots, ulong totalBytes)
    {
        PageSize = pageSize;
        _slots = slots;
        TotalBytes = totalBytes;
        TotalPages = (long)(totalBytes / (ulong)pageSize);

        _linearBase = new long[slots.Length];
        long linear = 0;
        for (int i = 0; i < slots.Length; i++)
        {
            _linearBase[i] = linear;
            linear += (long)(slots[i].SizeBytes / (ulong)pageSize);
        }

        _slotIndex = Enumerable.Range(0, slots.Length).OrderBy(i => slots[i].GuestPhysicalAddress).ToArray();
        _firstPage = _slotIndex.Select(i => slots[i].GuestPhysicalAddress / (ulong)pageSize).ToArray();
        _endPage = _slotIndex.Select(i => slots[i].EndAddress / (ulong)pageSize).ToArray();
    }

    public int PageSize { get; }

    /// <summary>Slots in the order they were announced.</summary>
    public IReadOnlyList<LayoutSlot> Slots => _slots;

    public ulong TotalBytes { get; }

    public long TotalPages { get; }

    /// <summary>Validates and builds a layout; throws <see cref="ProtocolException"/> naming the bad slot.</summary>
    public static MemoryLayout Create(int pageSize, IEnumerable<LayoutSlot> slots)
    {
        ArgumentNullException.ThrowIfNull(slots);
        if (pageSize < WireLimits.MinPageSize || pageSize > WireLimits.MaxPageSize || (pageSize & (pageSize - 1)) != 0)
            throw new ProtocolException(ProtocolError.BadPageSize, "Hello.pageSize", pageSize,
                $"page size {pageSize} is not a power of two between {WireLimits.MinPageSize} and {WireLimits.MaxPageSize}");

        LayoutSlot[] array = slots.ToArray();
        if (array.Length == 0)
            throw new ProtocolException(ProtocolError.SlotSizeInvalid, "Hello.slotCount", 0, "the memory layout announces no slots");
        if (array.Length > WireLimits.MaxSlots)
            throw new ProtocolException(ProtocolError.TooManySlots, "Hello.slotCount", array.Length,
                $"the memory layout announces {array.Length} slots, the limit is {WireLimits.MaxSlots}");

        ulong page = (ulong)pageSize;
        ulong total = 0;
        var ids = new HashSet<uint>();
        for (int i = 0; i < array.Length; i++)
        {
            LayoutSlot s = array[i];
            string field = $"Hello.slot[{i}]";
            if (!ids.Add(s.SlotId))
                throw new ProtocolException(ProtocolError.DuplicateSlotId, field + ".slotId", s.SlotId,
                    $"memory layout slot {i}: slot id {s.SlotId} is announced twice");
            if (s.GuestPhysicalAddress % page != 0)
                throw new ProtocolException(ProtocolError.SlotMisaligned, field + ".guestPhysicalAddress", s.GuestPhysicalAddress,
                    $"memory layout slot {i} (id {s.SlotId}): address 0x{s.GuestPhysicalAddress:x} is not aligned to the {pageSize}-byte page size");
            if (s.SizeBytes == 0 || s.SizeBytes % page != 0)
                throw new ProtocolException(ProtocolError.SlotSizeInvalid, field + ".sizeBytes", s.SizeBytes,
                    $"memory layout slot {i} (id {s.SlotId}): size {s.SizeBytes} is not a non-zero multiple of the {pageSize}-byte page size");
            if (ulong.MaxValue - s.GuestPhysicalAddress < s.SizeBytes)
                throw new ProtocolException(ProtocolError.SlotSizeInvalid, field + ".sizeBytes", s.SizeBytes,
                    $"memory layout slot {i} (id {s.SlotId}): 0x{s.GuestPhysicalAddress:x} + 0x{s.SizeBytes:x} wraps past the end of the address space");
            if (s.SizeBytes > WireLimits.MaxTotalMemoryBytes - total)
                throw new ProtocolException(ProtocolError.LayoutTooLarge, field + ".sizeBytes", s.SizeBytes,
                    $"memory layout exceeds the {WireLimits.MaxTotalMemoryBytes >> 30} GiB limit at slot {i} (id {s.SlotId})");
            total += s.SizeBytes;
        }

        int[] order = Enumerable.Range(0, array.Length).OrderBy(i => array[i].GuestPhysicalAddress).ToArray();
        for (int k = 1; k < order.Length; k++)
        {
            LayoutSlot prev = array[order[k - 1]], cur = array[order[k]];
            if (cur.GuestPhysicalAddress < prev.EndAddress)
                throw new ProtocolException(ProtocolError.SlotOverlap, $"Hello.slot[{order[k]}].guestPhysicalAddress", cur.GuestPhysicalAddress,
                    $"memory layout: {cur} overlaps {prev}");
        }
        return new MemoryLayout(pageSize, array, total);
    }

    /// <summary>A layout of one slot (id 0) at GPA 0 — the common case for the project's guests.</summary>
    public static MemoryLayout SingleSlot(int pageSize, ulong sizeBytes) => Create(pageSize, [new LayoutSlot(0, 0, sizeBytes)]);

    /// <summary>Guest page frame number of a guest physical address.</summary>
    public ulong PageNumberOf(ulong guestPhysicalAddress) => guestPhysicalAddress / (ulong)PageSize;

    /// <summary>True when the page frame number lies inside one of the announced slots.</summary>
    public bool Contains(ulong pageNumber) => FindSorted(pageNumber) >= 0;

    public bool TryLocate(ulong pageNumber, out PageLocation location)
    {
        int k = FindSorted(pageNumber);
        if (k < 0)
        {
            location = default;
            return false;
        }
        int slot = _slotIndex[k];
        ulong pageInSlot = pageNumber - _firstPage[k];
        location = new PageLocation(slot, _slots[slot].SlotId, pageInSlot * (ulong)PageSize, _linearBase[slot] + (long)pageInSlot);
        return true;
    }

    /// <summary>Like <see cref="TryLocate"/> but throws when the page is outside the layout (a caller bug on the local side).</summary>
    public PageLocation Locate(ulong pageNumber) =>
        TryLocate(pageNumber, out PageLocation location)
            ? location
            : throw new ArgumentOutOfRangeException(nameof(pageNumber), pageNumber, $"page {pageNumber} is outside the layout ({TotalPages} pages)");

    /// <summary>The page frame number of a linear index (inverse of <see cref="PageLocation.LinearIndex"/>).</summary>
    public ulong PageNumberOfLinearIndex(long linearIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(linearIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(linearIndex, TotalPages);
        int slot = Array.BinarySearch(_linearBase, linearIndex);
        if (slot < 0) slot = ~slot - 1;
        return _slots[slot].GuestPhysicalAddress / (ulong)PageSize + (ulong)(linearIndex - _linearBase[slot]);
    }

    private int FindSorted(ulong pageNumber)
    {
        int lo = 0, hi = _firstPage.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (pageNumber < _firstPage[mid]) hi = mid - 1;
            else if (pageNumber >= _endPage[mid]) lo = mid + 1;
            else return mid;
        }
        return -1;
    }

    public override string ToString() => $"{_slots.Length} slot(s), {TotalPages} pages of {PageSize} bytes";
}
