using System.Diagnostics;
using System.Numerics;
using KvmPresync.Memory;
using KvmPresync.Core;

namespace KvmPresync.Kvm;

/// <summary>
/// The KVM dirty log of one memory slot as an <see cref="IDirtyPageSource"/>: each harvest reads the log,
/// ORs it (and any pages the VMM wrote itself) into the caller's bitmap, then clears exactly the pages it
/// read, 64-page chunk by chunk. A page written after its chunk's clear is logged again, so nothing is lost;
/// a page is never cleared before it is in the caller's bitmap.
/// </summary>
public sealed class KvmDirtyPageSource : IDirtyPageSource
{
    private readonly Vm _vm;
    private readonly MemorySlot _slot;
    private readonly DirtyBitmap? _vmmWrites;
    private readonly Func<ulong>? _progress;
    private readonly ulong[] _scratch;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private ulong _lastProgress;

    /// <param name="vmmWrites">Pages the VMM wrote itself (KVM does not log them); merged and cleared at each harvest.</param>
    /// <param name="progressTotal">Reads the guest's total work units, for <see cref="DirtyHarvest.Progress"/>.</param>
    public KvmDirtyPageSource(Vm vm, MemorySlot slot, DirtyBitmap? vmmWrites = null, Func<ulong>? progressTotal = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(slot);
        if (!slot.LogDirty) throw new ArgumentException($"{slot} has no dirty logging", nameof(slot));
        if (vmmWrites is not null && vmmWrites.PageCount != slot.PageCount)
            throw new ArgumentException($"VMM-writes bitmap covers {vmmWrites.PageCount} pages, {slot} has {slot.PageCount}", nameof(vmmWrites));
        _vm = vm;
        _slot = slot;
        _vmmWrites = vmmWrites;
        _progress = progressTotal;
        _lastProgress = progressTotal?.Invoke() ?? 0;
        _scratch = new ulong[slot.BitmapWords];
    }

    public long PageCount => _slot.PageCount;

    public int PageSize => _slot.Memory.PageSize;

    public DirtyHarvest Harvest(DirtyBitmap into)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (into.PageCount != PageCount)
            throw new ArgumentException($"bitmap covers {into.PageCount} pages, the slot has {PageCount}", nameof(into));
        _vm.GetDirtyLog(_slot, _scratch);
        TimeSpan time = _clock.Elapsed;
        Span<ulong> dest = into.Words;
        long count = 0;
        for (int w = 0; w < _scratch.Length; w++)
        {
            ulong bits = _scratch[w];
            if (bits == 0) continue;
            count += BitOperations.PopCount(bits);
            dest[w] |= bits;
        }
        ClearHarvested();
        if (_vmmWrites is not null && !_vmmWrites.IsEmpty())
        {
            count += _vmmWrites.Count();
            into.Or(_vmmWrites);
            _vmmWrites.Clear();
        }
        ulong progress = 0;
        if (_progress is not null)
        {
            ulong now = _progress();
            progress = now - _lastProgress;
            _lastProgress = now;
        }
        return new DirtyHarvest(time, count, progress);
    }

    /// <summary>Clears the harvested pages in runs of non-empty 64-page chunks (one ioctl per run).</summary>
    private void ClearHarvested()
    {
        int w = 0;
        while (w < _scratch.Length)
        {
            if (_scratch[w] == 0) { w++; continue; }
            int start = w;
            while (w < _scratch.Length && _scratch[w] != 0) w++;
            long first = start * 64L;
            long count = Math.Min((w - start) * 64L, _slot.PageCount - first);
            _vm.ClearDirtyLog(_slot, first, count, _scratch.AsSpan(start, w - start));
        }
    }
}
