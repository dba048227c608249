using System.Buffers.Binary;
using System.Security.Cryptography;
using KvmPresync.Memory;
using static KvmPresync.Tests.Hashing.HashingTestSupport;

namespace KvmPresync.Tests.Hashing;

/// <summary>
/// The protocol 1.3 memory digest (hash tree over the page hashes): kept current page by page it equals the digest computed
/// from scratch, it follows the documented definition byte for byte, and it changes with any page, its position, or the
/// page count.
/// </summary>
public sealed class PageHashTreeTests
{
    private const int PageSize = 4096;

    /// <summary>The definition in PROTOCOL.md / PageHashTree's header, written out independently.</summary>
    private static byte[] Reference(ulong[] hashes, int pageSize)
    {
        var level = new List<byte[]>();
        for (int i = 0; i < hashes.Length; i += 64)
        {
            int n = Math.Min(64, hashes.Length - i);
            byte[] leaf = new byte[n * 8];
            for (int j = 0; j < n; j++) BinaryPrimitives.WriteUInt64LittleEndian(leaf.AsSpan(j * 8), hashes[i + j]);
            level.Add(SHA256.HashData(leaf));
        }
        while (level.Count > 1)
        {
            var up = new List<byte[]>();
            for (int i = 0; i < level.Count; i += 64)
                up.Add(SHA256.HashData(level.Skip(i).Take(64).SelectMany(d => d).ToArray()));
            level = up;
        }
        byte[] root = new byte[24 + 32];
        "KPSMDT01"u8.CopyTo(root);
        BinaryPrimitives.WriteUInt32LittleEndian(root.AsSpan(8), (uint)pageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(root.AsSpan(12), 64);
        BinaryPrimitives.WriteUInt64LittleEndian(root.AsSpan(16), (ulong)hashes.Length);
        level[0].CopyTo(root, 24);
        return SHA256.HashData(root);
    }

    private static ulong[] RandomHashes(int n, int seed)
    {
        var rng = new Random(seed);
        var h = new ulong[n];
        for (int i = 0; i < n; i++) h[i] = (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40);
        return h;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(4096)]
    [InlineData(4097)]
    [InlineData(64 * 64 * 64 + 1)] // four levels
    public void Digest_follows_the_documented_definition(int pages)
    {
        ulong[] hashes = RandomHashes(pages, pages);
        var tree = new PageHashTree(pages, PageSize, 0);
        tree.SetPages(0, hashes);
        Assert.Equal(Reference(hashes, PageSize), tree.Compute());
    }

    [Fact]
    public void Kept_current_page_by_page_it_equals_the_digest_from_scratch_and_rehashes_only_what_changed()
    {
        const int pages = 70_000; // three levels, the last node of each level partial
        ulong zero = PageHasher.ZeroPageHash(PageSize);
        var tree = new PageHashTree(pages, PageSize, zero);
        ulong[] now = Enumerable.Repeat(zero, pages).ToArray();
        Assert.Equal(Reference(now, PageSize), tree.Compute());
        Assert.Equal(0, tree.StaleLeaves);

        var rng = new Random(5);
        for (int round = 0; round < 20; round++)
        {
            int changes = rng.Next(0, 300);
            var leaves = new HashSet<int>();
            for (int c = 0; c < changes; c++)
            {
                int p = round % 4 == 0 ? pages - 1 - rng.Next(100) : rng.Next(pages); // sometimes the partial tail
                ulong h = (ulong)rng.NextInt64();
                now[p] = h;
                tree.Set(p, h);
                leaves.Add(p / PageHashTree.Fanout);
            }
            tree.Set(0, now[0]); // setting an unchanged hash marks nothing
            Assert.Equal(leaves.Count, tree.StaleLeaves);
            Assert.Equal(Reference(now, PageSize), tree.Compute());
            Assert.Equal(0, tree.StaleLeaves);
        }
    }

    [Fact]
    public void Any_one_page_its_position_and_the_page_count_change_the_digest()
    {
        const int pages = 5000;
        ulong[] hashes = RandomHashes(pages, 9);
        var tree = new PageHashTree(pages, PageSize, 0);
        tree.SetPages(0, hashes);
        byte[] original = tree.Compute();
        var seen = new HashSet<string> { Convert.ToHexString(original) };
        for (int p = 0; p < pages; p += 37)
        {
            tree.Set(p, hashes[p] ^ 1);
            Assert.True(seen.Add(Convert.ToHexString(tree.Compute())), $"changing page {p} left the digest unchanged or repeated another");
            tree.Set(p, hashes[p]);
        }
        Assert.Equal(original, tree.Compute());

        // Two pages swapped (in different leaves, and within one leaf).
        foreach ((int a, int b) in new[] { (3, 4000), (10, 11) })
        {
            tree.Set(a, hashes[b]);
            tree.Set(b, hashes[a]);
            Assert.NotEqual(original, tree.Compute());
            tree.Set(a, hashes[a]);
            tree.Set(b, hashes[b]);
        }

        // The same hashes with one more page (zero hash) or another page size.
        var longer = new PageHashTree(pages + 1, PageSize, 0);
        longer.SetPages(0, hashes);
        Assert.NotEqual(original, longer.Compute());
        var otherSize = new PageHashTree(pages, 2 * PageSize, 0);
        otherSize.SetPages(0, hashes);
        Assert.NotEqual(original, otherSize.Compute());
    }

    [Fact]
    public void From_memory_it_agrees_with_the_flat_digests_page_hashes_and_differs_from_the_flat_digest()
    {
        byte[] memory = RandomBytes(PageSize * 200, 21);
        var tree = new PageHashTree(200, PageSize, 0);
        tree.HashPages(0, memory);
        Assert.Equal(PageHashTree.Of(memory, PageSize), tree.Compute());

        var flat = new MemoryDigest(200, PageSize);
        flat.HashPages(0, memory);
        for (int p = 0; p < 200; p++) Assert.Equal(flat.PageHash(p), tree[p]);
        byte[] fromTreeHashes = new byte[MemoryDigest.Size];
        MemoryDigest.ComputeFlat(tree.Hashes, PageSize, fromTreeHashes);
        Assert.Equal(MemoryDigest.Of(memory, PageSize), fromTreeHashes); // the 1.2 digest from the same table
        Assert.NotEqual(fromTreeHashes, tree.Compute());                 // and the two forms are never confused

        memory[77 * PageSize + 5] ^= 0x80;
        tree.HashPages(77, memory.AsSpan(77 * PageSize, PageSize));
        Assert.Equal(PageHashTree.Of(memory, PageSize), tree.Compute());
    }

    [Fact]
    public void Reset_starts_over_with_every_page_equal()
    {
        ulong zero = PageHasher.ZeroPageHash(PageSize);
        var tree = new PageHashTree(300, PageSize, zero);
        byte[] fresh = tree.Compute();
        tree.Set(5, 1);
        tree.Set(299, 2);
        Assert.NotEqual(fresh, tree.Compute());
        tree.Reset(zero);
        Assert.Equal(fresh, tree.Compute());
    }

    [Fact]
    public void Bad_arguments_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PageHashTree(0, PageSize, 0));
        Assert.Throws<ArgumentException>(() => new PageHashTree(1, 100, 0));
        var tree = new PageHashTree(10, PageSize, 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => tree.Set(10, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => tree.Set(-1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => tree.SetPages(8, new ulong[3]));
        Assert.Throws<ArgumentException>(() => tree.HashPages(0, new byte[PageSize + 1]));
        Assert.Throws<ArgumentException>(() => tree.Compute(new byte[31]));
    }
}
