using System.Buffers;
using System.Runtime.InteropServices;

namespace KvmPresync.Wire;

/// <summary>
/// Merges neighbouring segments that are adjacent in memory (same array or same <see cref="MemoryManager{T}"/>,
/// one starting where the previous ends) into one segment — no bytes are copied; runs of consecutive guest
/// pages become one large send instead of one per page.
/// </summary>
internal static class SegmentRuns
{
    /// <summary>Appends <paramref name="segments"/> to <paramref name="runs"/>, merging adjacent ones and dropping empty ones.</summary>
    public static void Merge(IReadOnlyList<ReadOnlyMemory<byte>> segments, List<ReadOnlyMemory<byte>> runs)
    {
        for (int i = 0; i < segments.Count; i++)
        {
            ReadOnlyMemory<byte> next = segments[i];
            if (next.IsEmpty) continue;
            if (runs.Count > 0 && TryJoin(runs[^1], next, out ReadOnlyMemory<byte> joined))
                runs[^1] = joined;
            else
                runs.Add(next);
        }
    }

    internal static bool TryJoin(ReadOnlyMemory<byte> a, ReadOnlyMemory<byte> b, out ReadOnlyMemory<byte> joined)
    {
        if (MemoryMarshal.TryGetArray(a, out ArraySegment<byte> sa) && MemoryMarshal.TryGetArray(b, out ArraySegment<byte> sb))
        {
            if (ReferenceEquals(sa.Array, sb.Array) && sa.Offset + sa.Count == sb.Offset)
            {
                joined = new ReadOnlyMemory<byte>(sa.Array, sa.Offset, sa.Count + sb.Count);
                return true;
            }
        }
        else if (MemoryMarshal.TryGetMemoryManager(a, out MemoryManager<byte>? ma, out int startA, out int lengthA)
                 && MemoryMarshal.TryGetMemoryManager(b, out MemoryManager<byte>? mb, out int startB, out int lengthB)
                 && ReferenceEquals(ma, mb) && startA + lengthA == startB)
        {
            joined = ((ReadOnlyMemory<byte>)ma.Memory).Slice(startA, lengthA + lengthB);
            return true;
        }
        joined = default;
        return false;
    }
}
