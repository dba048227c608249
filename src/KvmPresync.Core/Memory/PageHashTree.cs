using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace KvmPresync.Memory;

/// <summary>
/// Every page's <see cref="PageHasher"/> hash plus a hash tree over them, so the memory digest after a few pages changed
/// costs O(changed pages), not O(memory): the protocol 1.3 memory digest (<c>HelloOptions.TreeDigest</c>). Each side keeps
/// one current as pages are sent / land; at the switchover only the nodes above pages set since the last
/// <see cref="Compute(Span{byte})"/> are hashed again.
/// <para>
/// Definition (n pages, F = <see cref="Fanout"/> = 64, all integers little-endian):
/// <code>
/// level 1 node i   = SHA-256( hash of page F·i, F·i+1, …, min(F·i+F, n)−1, each u64 )        ⌈n / F⌉ nodes
/// level k+1 node i = SHA-256( level-k node F·i, …, min(F·i+F, count_k)−1, each 32 bytes )    ⌈count_k / F⌉ nodes
///                    … until a level has exactly one node, the top
/// digest           = SHA-256( header ‖ top )
/// header (24 bytes): magic "KPSMDT01" (ASCII; T = tree, 01 = page-hash algorithm version), u32 page size,
///                    u32 fan-out (64), u64 page count
/// </code>
/// Position binds each page number (a page hash's place in its node, each node's place in its parent), the header binds
/// the page size, the shape and the page count. Changing one page re-hashes one node per level: 512 bytes at level 1,
/// 2 KiB above (for 256 MiB: 3 levels; 16 GiB: 4).
/// </para>
/// <para>
/// Not thread-safe: one writer (the sender's encoder, the receiver's session) at a time.
/// </para>
/// </summary>
public sealed class PageHashTree
{
    /// <summary>Length of the digest in bytes (SHA-256).</summary>
    public const int Size = 32;

    /// <summary>Children per node: page hashes in a level-1 node, node digests in the levels above.</summary>
    public const int Fanout = 64;

    private const int HeaderSize = 24;
    private static ReadOnlySpan<byte> Magic => "KPSMDT01"u8;

    private readonly ulong[] _hashes;
    private readonly byte[][] _levels;        // _levels[k] holds level k+1's node digests, 32 bytes each
    private readonly ulong[][] _staleBits;    // per level: nodes whose digest is out of date
    private readonly List<int>[] _stale;      // the same nodes as a list, so Compute visits only them

    /// <summary>A tree over <paramref name="pageCount"/> pages that all hash to <paramref name="initialHash"/> (e.g. the zero-page hash).</summary>
    public PageHashTree(long pageCount, int pageSize, ulong initialHash)
    {
        if (pageCount <= 0 || pageCount > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount, $"page count must be between 1 and {Array.MaxLength}");
        if (pageSize <= 0 || pageSize % PageHasher.BlockSize != 0)
            throw new ArgumentException(
                $"page size {pageSize} is not a positive multiple of {PageHasher.BlockSize} bytes; pass the guest page size (4096 on x86-64)", nameof(pageSize));
        PageCount = pageCount;
        PageSize = pageSize;
        _hashes = new ulong[pageCount];
        var levels = new List<byte[]>();
        long count = pageCount;
        do
        {
            count = (count + Fanout - 1) / Fanout;
            levels.Add(new byte[count * Size]);
        }
        while (count > 1);
        _levels = [.. levels];
        _staleBits = new ulong[_levels.Length][];
        _stale = new List<int>[_levels.Length];
        for (int k = 0; k < _levels.Length; k++)
        {
            int nodes = _levels[k].Length / Size;
            _staleBits[k] = new ulong[(nodes + 63) / 64];
            _stale[k] = new List<int>(Math.Min(nodes, 4096));
        }
        Reset(initialHash);
    }

    public long PageCount { get; }

    public int PageSize { get; }

    /// <summary>Levels above the page hashes (the last one is the top, a single node).</summary>
    public int Levels => _levels.Length;

    /// <summary>Every page's hash, in page order (what the flat 1.2 digest, <see cref="MemoryDigest.ComputeFlat"/>, is over).</summary>
    public ReadOnlySpan<ulong> Hashes => _hashes;

    /// <summary>Level-1 nodes to re-hash at the next <see cref="Compute(Span{byte})"/>.</summary>
    public int StaleLeaves => _stale[0].Count;

    /// <summary>The hash recorded for <paramref name="page"/>.</summary>
    public ulong this[long page] => _hashes[CheckPage(page)];

    /// <summary>Records the hash of one page (its nodes are re-hashed at the next compute only if it changed).</summary>
    public void Set(long page, ulong hash)
    {
        ref ulong slot = ref _hashes[CheckPage(page)];
        if (slot == hash) return;
        slot = hash;
        MarkStale(0, (int)(page / Fanout));
    }

    /// <summary>Records the hashes of pages firstPage, firstPage+1, … (one per element).</summary>
    public void SetPages(long firstPage, ReadOnlySpan<ulong> hashes)
    {
        CheckRange(firstPage, hashes.Length);
        for (int i = 0; i < hashes.Length; i++) Set(firstPage + i, hashes[i]);
    }

    /// <summary>Hashes every page of <paramref name="memory"/> (a whole number of pages) as pages firstPage, firstPage+1, ….</summary>
    public void HashPages(long firstPage, ReadOnlySpan<byte> memory)
    {
        if (memory.Length % PageSize != 0)
            throw new ArgumentException(
                $"memory of {memory.Length} bytes is not a whole number of {PageSize}-byte pages; pass the full page-aligned region", nameof(memory));
        int count = memory.Length / PageSize;
        CheckRange(firstPage, count);
        for (int n = 0; n < count; n++) Set(firstPage + n, PageHasher.Hash(memory.Slice(n * PageSize, PageSize), out _));
    }

    /// <summary>Sets every page's hash to <paramref name="hash"/> (O(memory); e.g. a receiver that starts over with fresh memory).</summary>
    public void Reset(ulong hash)
    {
        Array.Fill(_hashes, hash);
        for (int k = 0; k < _levels.Length; k++)
        {
            Array.Clear(_staleBits[k]);
            _stale[k].Clear();
        }
        int leaves = _levels[0].Length / Size;
        for (int i = 0; i < leaves; i++) MarkStale(0, i);
    }

    /// <summary>The digest (re-hashes only the nodes above pages that changed since the last call).</summary>
    public byte[] Compute()
    {
        byte[] digest = new byte[Size];
        Compute(digest);
        return digest;
    }

    /// <summary>Writes the digest (<see cref="Size"/> bytes) to <paramref name="destination"/>.</summary>
    public void Compute(Span<byte> destination)
    {
        if (destination.Length < Size)
            throw new ArgumentException($"destination has {destination.Length} bytes; the digest needs {Size}", nameof(destination));
        Span<byte> swapped = BitConverter.IsLittleEndian ? default : stackalloc byte[Fanout * sizeof(ulong)];
        for (int k = 0; k < _levels.Length; k++)
        {
            List<int> stale = _stale[k];
            ulong[] bits = _staleBits[k];
            byte[] level = _levels[k];
            for (int s = 0; s < stale.Count; s++)
            {
                int node = stale[s];
                bits[node >> 6] &= ~(1UL << (node & 63));
                SHA256.HashData(Children(k, node, swapped), level.AsSpan(node * Size, Size));
                if (k + 1 < _levels.Length) MarkStale(k + 1, node / Fanout);
            }
            stale.Clear();
        }

        Span<byte> root = stackalloc byte[HeaderSize + Size];
        Magic.CopyTo(root);
        BinaryPrimitives.WriteUInt32LittleEndian(root[8..], (uint)PageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(root[12..], Fanout);
        BinaryPrimitives.WriteUInt64LittleEndian(root[16..], (ulong)PageCount);
        _levels[^1].AsSpan(0, Size).CopyTo(root[HeaderSize..]);
        SHA256.HashData(root, destination[..Size]);
    }

    /// <summary>
    /// The digest of <paramref name="memory"/> viewed as consecutive pages of <paramref name="pageSize"/> bytes, computed from
    /// scratch (tests, and the definition's reference).
    /// </summary>
    public static byte[] Of(ReadOnlySpan<byte> memory, int pageSize)
    {
        if (pageSize <= 0 || memory.Length == 0 || memory.Length % pageSize != 0)
            throw new ArgumentException(
                $"memory of {memory.Length} bytes is not a non-empty whole number of {pageSize}-byte pages; pass the full page-aligned guest memory", nameof(memory));
        var tree = new PageHashTree(memory.Length / pageSize, pageSize, 0);
        tree.HashPages(0, memory);
        return tree.Compute();
    }

    /// <summary>The bytes node <paramref name="node"/> of level k+1 is the SHA-256 of: its children's hashes or digests.</summary>
    private ReadOnlySpan<byte> Children(int k, int node, Span<byte> swapped)
    {
        if (k == 0)
        {
            long first = (long)node * Fanout;
            int n = (int)Math.Min(Fanout, PageCount - first);
            ReadOnlySpan<ulong> hashes = _hashes.AsSpan((int)first, n);
            if (BitConverter.IsLittleEndian) return MemoryMarshal.AsBytes(hashes);
            Span<ulong> le = MemoryMarshal.Cast<byte, ulong>(swapped)[..n];
            BinaryPrimitives.ReverseEndianness(hashes, le);
            return MemoryMarshal.AsBytes(le);
        }
        byte[] below = _levels[k - 1];
        int start = node * Fanout * Size;
        return below.AsSpan(start, Math.Min(Fanout * Size, below.Length - start));
    }

    private void MarkStale(int level, int node)
    {
        ref ulong word = ref _staleBits[level][node >> 6];
        ulong bit = 1UL << (node & 63);
        if ((word & bit) != 0) return;
        word |= bit;
        _stale[level].Add(node);
    }

    private long CheckPage(long page)
    {
        if ((ulong)page >= (ulong)PageCount)
            throw new ArgumentOutOfRangeException(nameof(page), page, $"page {page} is outside the tree's {PageCount} pages");
        return page;
    }

    private void CheckRange(long first, int count)
    {
        if (first < 0 || first + count > PageCount)
            throw new ArgumentOutOfRangeException(nameof(first), first, $"pages {first}..{first + count - 1} are outside the tree's {PageCount} pages");
    }
}
