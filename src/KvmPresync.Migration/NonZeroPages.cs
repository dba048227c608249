using KvmPresync.Core;
using KvmPresync.Memory;

namespace KvmPresync.Migration;

/// <summary>
/// Which pages of guest memory hold non-zero content when the sender starts: the sync engine's cost map
/// (<see cref="Engine.PageCost"/>). A zero page costs the wire nothing while the receiver's fresh memory holds it
/// (<see cref="PageBatchEncoder"/> skips it as unchanged), and at most a header later; charged as a full page, a guest
/// with much untouched memory spent its whole sync window on pages that were never sent (predict+slowstart: 768 B sent
/// in 15 s of a 256 MiB replay guest, issue 11).
/// </summary>
/// <remarks>
/// Dirty logging is on before the scan, so a page written after it is in a later harvest, and
/// <see cref="Engine.SyncEngine.Absorb"/> marks every harvested page non-zero. The map only prices pages; what is
/// sent is still decided by each page's hash when it is sent.
/// </remarks>
internal static class NonZeroPages
{
    /// <summary>Scans <paramref name="memory"/> (vectorized; a non-zero page stops at its first non-zero byte).</summary>
    public static DirtyBitmap Scan(GuestMemoryMap memory)
    {
        var nonZero = new DirtyBitmap(memory.PageCount);
        for (long first = 0; first < memory.PageCount;)
        {
            int count = memory.ContiguousPages(first);
            ReadOnlySpan<byte> run = memory.Pages(first, count);
            for (int i = 0; i < count; i++)
                if (run.Slice(i * memory.PageSize, memory.PageSize).ContainsAnyExcept((byte)0)) nonZero.Set(first + i);
            first += count;
        }
        return nonZero;
    }
}
