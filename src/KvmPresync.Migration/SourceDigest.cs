using KvmPresync.Memory;

namespace KvmPresync.Migration;

/// <summary>
/// The source's memory digest at the switchover, in the form the session negotiated (the 1.3 hash tree, or the flat 1.2
/// digest) and from what <see cref="PresyncOptions.Verify"/> says: the hashes of what was sent (delta) or the paused bytes
/// re-hashed (full).
/// </summary>
internal static class SourceDigest
{
    private const int ChunkPages = 4096;

    /// <summary>The digest to send in FinalState. Call only after every pending page was sent paused.</summary>
    public static byte[] Of(SenderRun run)
    {
        byte[] digest = new byte[MemoryDigest.Size];
        PageHashTree sent = run.Encoder.SentHashes;
        if (run.Options.Verify == VerifyMode.Delta)
        {
            if (run.TreeDigest) sent.Compute(digest);
            else MemoryDigest.ComputeFlat(sent.Hashes, sent.PageSize, digest);
            return digest;
        }
        ulong[] hashes = HashAll(run.Memory, run.Memory.PageCount);
        if (run.TreeDigest)
        {
            var tree = new PageHashTree(hashes.Length, run.Memory.PageSize, 0);
            tree.SetPages(0, hashes);
            tree.Compute(digest);
        }
        else MemoryDigest.ComputeFlat(hashes, run.Memory.PageSize, digest);
        return digest;
    }

    /// <summary>Every page's hash from the bytes, chunks in parallel.</summary>
    private static ulong[] HashAll(GuestMemoryMap memory, long pages)
    {
        var hashes = new ulong[pages];
        var chunks = new List<(long First, int Count)>();
        for (long first = 0; first < pages;)
        {
            int count = (int)Math.Min(Math.Min(ChunkPages, memory.ContiguousPages(first)), pages - first);
            chunks.Add((first, count));
            first += count;
        }
        Parallel.ForEach(chunks, c =>
        {
            ReadOnlySpan<byte> bytes = memory.Pages(c.First, c.Count);
            for (int i = 0; i < c.Count; i++)
                hashes[c.First + i] = PageHasher.Hash(bytes.Slice(i * memory.PageSize, memory.PageSize), out _);
        });
        return hashes;
    }

    /// <summary>JIT and warm the digest paths (at connect time, not in the downtime).</summary>
    public static void Warm(GuestMemoryMap memory)
    {
        Span<byte> digest = stackalloc byte[MemoryDigest.Size];
        ulong[] hashes = HashAll(memory, Math.Min(ChunkPages, memory.PageCount));
        MemoryDigest.ComputeFlat(hashes, memory.PageSize, digest);
        var tree = new PageHashTree(hashes.Length, memory.PageSize, 0);
        tree.SetPages(0, hashes);
        tree.Compute(digest);
    }
}
