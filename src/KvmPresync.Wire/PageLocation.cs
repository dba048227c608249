namespace KvmPresync.Wire;

/// <summary>
/// Where a guest page lives: the slot (index into <see cref="MemoryLayout.Slots"/> and its id), the byte offset
/// inside that slot, and the page's linear index over all slots in announced order (0 .. TotalPages-1,
/// the index a <see cref="KvmPresync.Memory.DirtyBitmap"/> over the whole layout uses).
/// </summary>
public readonly record struct PageLocation(int SlotIndex, uint SlotId, ulong OffsetInSlot, long LinearIndex);
