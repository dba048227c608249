using System.Diagnostics;
using System.Numerics;
using KvmPresync.Memory;
using KvmPresync.Core;

namespace KvmPresync.Kvm;

/// <summary>
/// The KVM dirty log of one or more memory slots as one <see cref="IDirtyPageSource"/>: pages are numbered slot
/// after slot in the order given (the first slot's pages, then the next's — the index of a
/// <see cref="GuestMemoryMap"/> over the same regions in the same order). Each harvest reads every slot's log, ORs it
/// (and any pages the VMM wrote itself) into the caller's bitmap, then clears exactly the pages it read, 64-page
/// chunk by chunk. A page written after its chunk's clear is logged again, so nothing is lost; a page is never
/// cleared before it is in the caller's bitmap.
/// </summary>
public sealed class KvmDirtyPageSource : IDirtyPageSource, IDirtyPagePeek
{
    private readonly Vm _vm;
    private readonly MemorySlot[] _slots;
    private readonly long[] _firstIndex;       // linear index of each slot's first page
    private readonly ulong[][] _scratch;       // each slot's log, as KVM returns it
    private ulong[][]? _peekScratch;           // the same for Peek (another thread)
    private readonly DirtyBitmap? _vmmWrites;
    private readonly Func<ulong>? _progress;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private ulong _lastProgress;

    /// <param name="vmmWrites">Pages the VMM wrote itself (KVM does not log them), indexed like this source; merged and cleared at each harvest.</param>
    /// <param name="progressTotal">Reads the guest's total work units, for <see cref="DirtyHarvest.Progress"/>.</param>
    public KvmDirtyPageSource(Vm vm, MemorySlot slot, DirtyBitmap? vmmWrites = null, Func<ulong>? progressTotal = null)
        : this(vm, [slot], vmmWrites, progressTotal)
    {
    }

    /// <param name="slots">The slots, in the order their pages are numbered; each with dirty logging, same page size.</param>
    /// <param name="vmmWrites">Pages the VMM wrote itself (KVM does not log them), indexed like this source; merged and cleared at each harvest.</param>
    /// <param name="progressTotal">Reads the guest's total work units, for <see cref="DirtyHarvest.Progress"/>.</param>
    public KvmDirtyPageSource(Vm vm, IReadOnlyList<MemorySlot> slots, DirtyBitmap? vmmWrites = null, Func<ulong>? progressTotal = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(slots);
        if (slots.Count == 0) throw new ArgumentException("no memory slots to track", nameof(slots));
        _slots = slots.ToArray();
        _firstIndex = new long[_slots.Length];
        _scratch = new ulong[_slots.Length][];
        long pages = 0;
        for (int i = 0; i < _slots.Length; i++)
        {
            MemorySlot s = _slots[i] ?? throw new ArgumentException($"slot {i} is null", nameof(slots));
            if (!s.LogDirty) throw new ArgumentException($"{s} has no dirty logging", nameof(slots));
            if (s.Memory.PageSize != _slots[0].Memory.PageSize)
                throw new ArgumentException($"{s}: page size {s.Memory.PageSize} differs from {_slots[0]}'s", nameof(slots));
            _firstIndex[i] = pages;
            pages += s.PageCount;
            _scratch[i] = new ulong[s.BitmapWords];
        }
        PageCount = pages;
        if (vmmWrites is not null && vmmWrites.PageCount != PageCount)
            throw new ArgumentException($"VMM-writes bitmap covers {vmmWrites.PageCount} pages, the slots have {PageCount}", nameof(vmmWrites));
        _vm = vm;
        _vmmWrites = vmmWrites;
        _progress = progressTotal;
        _lastProgress = progressTotal?.Invoke() ?? 0;
    }

    public long PageCount { get; }

    public int PageSize => _slots[0].Memory.PageSize;

    /// <summary>The tracked slots, in page-number order.</summary>
    public IReadOnlyList<MemorySlot> Slots => _slots;

    public DirtyHarvest Harvest(DirtyBitmap into)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (into.PageCount != PageCount)
            throw new ArgumentException($"bitmap covers {into.PageCount} pages, the slots have {PageCount}", nameof(into));
        TimeSpan time = TimeSpan.Zero;
        long count = 0;
        for (int i = 0; i < _slots.Length; i++)
        {
            _vm.GetDirtyLog(_slots[i], _scratch[i]);
            if (i == 0) time = _clock.Elapsed;
            count += Merge(_scratch[i], _firstIndex[i], into.Words);
            ClearHarvested(_slots[i], _scratch[i]);
        }
        if (_vmmWrites is not null)
            count += _vmmWrites.TakeInto(into); // atomic: the VMM may be marking a write right now (the replay mailbox)
        ulong progress = 0;
        if (_progress is not null)
        {
            ulong now = _progress();
            progress = now - _lastProgress;
            _lastProgress = now;
        }
        return new DirtyHarvest(time, count, progress);
    }

    /// <summary>
    /// Pages the guest dirtied since the last <see cref="Harvest"/>, counted without clearing or re-protecting anything (with
    /// manual dirty-log protection KVM_GET_DIRTY_LOG only copies the log). One peeking thread; the kernel serializes it with
    /// a harvest on another thread (which makes the count drop). Pages the VMM wrote itself are counted too (a page both
    /// wrote counts twice: a look is for timing writes, not for the exact set).
    /// </summary>
    public DirtyPeek Peek()
    {
        _peekScratch ??= _slots.Select(s => new ulong[s.BitmapWords]).ToArray();
        TimeSpan time = _clock.Elapsed;
        long count = 0;
        for (int i = 0; i < _slots.Length; i++)
        {
            ulong[] log = _peekScratch[i];
            _vm.GetDirtyLog(_slots[i], log);
            foreach (ulong w in log) count += BitOperations.PopCount(w);
        }
        count += _vmmWrites?.Count() ?? 0; // pages the VMM wrote itself (a replayed trace's), also cleared only by a harvest
        return new DirtyPeek(time, count);
    }

    /// <summary>ORs a slot's log into <paramref name="dest"/> from bit <paramref name="first"/> on; returns the pages set in the log.</summary>
    private static long Merge(ulong[] log, long first, Span<ulong> dest)
    {
        long count = 0;
        int word = (int)(first >> 6), shift = (int)(first & 63);
        for (int w = 0; w < log.Length; w++)
        {
            ulong bits = log[w];
            if (bits == 0) continue;
            count += BitOperations.PopCount(bits);
            if (shift == 0)
            {
                dest[word + w] |= bits;
                continue;
            }
            // The slot starts mid-word: its word w straddles two words of the linear bitmap (bits past the slot's
            // last page are 0 in KVM's log, so the upper part is empty when it would fall off the end).
            dest[word + w] |= bits << shift;
            ulong high = bits >> (64 - shift);
            if (high != 0) dest[word + w + 1] |= high;
        }
        return count;
    }

    /// <summary>Clears the harvested pages of one slot in runs of non-empty 64-page chunks (one ioctl per run).</summary>
    private void ClearHarvested(MemorySlot slot, ulong[] log)
    {
        int w = 0;
        while (w < log.Length)
        {
            if (log[w] == 0) { w++; continue; }
            int start = w;
            while (w < log.Length && log[w] != 0) w++;
            long first = start * 64L;
            long count = Math.Min((w - start) * 64L, slot.PageCount - first);
            _vm.ClearDirtyLog(slot, first, count, log.AsSpan(start, w - start));
        }
    }
}
