using KvmPresync.Kvm.Interop;

namespace KvmPresync.Kvm;

// The dirty log of a VM's slots (KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG).
public sealed partial class Vm
{
    /// <summary>
    /// Reads slot <paramref name="slot"/>'s dirty bitmap into <paramref name="bitmap"/> (KVM layout, one bit
    /// per page). With manual clear (the default) reading does not clear: pages stay dirty in KVM until
    /// <see cref="ClearDirtyLog"/>; without it, reading clears and the caller must keep what it read.
    /// </summary>
    public unsafe void GetDirtyLog(MemorySlot slot, Span<ulong> bitmap)
    {
        CheckSlot(slot);
        if (!slot.LogDirty)
            throw new InvalidOperationException($"{slot} was registered without dirty logging");
        if (bitmap.Length != slot.BitmapWords)
            throw new ArgumentException($"dirty bitmap for {slot} needs {slot.BitmapWords} words, got {bitmap.Length}", nameof(bitmap));
        fixed (ulong* p = bitmap)
            KvmException.Check(KvmNative.VmGetDirtyLog(_handle.Fd, slot.Id, p), $"KVM_GET_DIRTY_LOG(slot {slot.Id})");
    }

    /// <summary>
    /// Clears (re-protects) the pages whose bits are set in <paramref name="mask"/>, for pages
    /// [<paramref name="firstPage"/>, +<paramref name="pageCount"/>) of the slot. KVM requires the first page
    /// and the count to be multiples of 64, except that the range may end at the slot's end.
    /// <paramref name="mask"/> holds bit 0 = <paramref name="firstPage"/>.
    /// </summary>
    public unsafe void ClearDirtyLog(MemorySlot slot, long firstPage, long pageCount, ReadOnlySpan<ulong> mask)
    {
        CheckSlot(slot);
        if (!Options.ManualDirtyLogClear)
            throw new InvalidOperationException("this VM was created without manual dirty-log clearing (VmOptions.ManualDirtyLogClear)");
        if (firstPage < 0 || pageCount <= 0 || firstPage + pageCount > slot.PageCount)
            throw new ArgumentOutOfRangeException(nameof(firstPage), $"pages [{firstPage}, {firstPage}+{pageCount}) outside {slot} of {slot.PageCount} pages");
        if (firstPage % 64 != 0 || (pageCount % 64 != 0 && firstPage + pageCount != slot.PageCount))
            throw new ArgumentException($"KVM_CLEAR_DIRTY_LOG needs a first page and count that are multiples of 64 (or a range ending at the slot's end); got first {firstPage}, count {pageCount}", nameof(firstPage));
        if (mask.Length < (pageCount + 63) / 64)
            throw new ArgumentException($"clear mask holds {mask.Length * 64} pages, range has {pageCount}", nameof(mask));
        fixed (ulong* p = mask)
            KvmException.Check(KvmNative.VmClearDirtyLog(_handle.Fd, slot.Id, (ulong)firstPage, (uint)pageCount, p),
                $"KVM_CLEAR_DIRTY_LOG(slot {slot.Id}, pages {firstPage}+{pageCount})");
    }

    private void CheckSlot(MemorySlot slot)
    {
        if (!_slots.Contains(slot))
            throw new ArgumentException($"{slot} does not belong to this VM", nameof(slot));
    }
}
