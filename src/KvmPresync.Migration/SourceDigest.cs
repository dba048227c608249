using KvmPresync.Memory;

namespace KvmPresync.Migration;

/// <summary>The memory digest of the source's (paused) memory, hashed from the bytes themselves, chunks in parallel.</summary>
internal static class SourceDigest
{
    private const int ChunkPages = 4096;

    public static byte[] Of(GuestMemoryMap memory, long pageLimit = long.MaxValue)
    {
        long pages = Math.Min(pageLimit, memory.PageCount);
        var digest = new MemoryDigest(pages, memory.PageSize);
        var chunks = new List<(long First, int Count)>();
        for (long first = 0; first < pages;)
        {
            int count = (int)Math.Min(Math.Min(ChunkPages, memory.ContiguousPages(first)), pages - first);
            chunks.Add((first, count));
            first += count;
        }
        Parallel.ForEach(chunks, c => digest.HashPages(c.First, memory.Pages(c.First, c.Count)));
        return digest.Compute();
    }

    /// <summary>JIT and warm the digest path (at connect time, not in the downtime).</summary>
    public static void Warm(GuestMemoryMap memory) => _ = Of(memory, pageLimit: ChunkPages);
}
