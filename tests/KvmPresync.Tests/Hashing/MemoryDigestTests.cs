using KvmPresync.Memory;
using static KvmPresync.Tests.Hashing.HashingTestSupport;

namespace KvmPresync.Tests.Hashing;

/// <summary>The final verification digest: equal exactly when every page (in place) is equal.</summary>
public sealed class MemoryDigestTests
{
    private const int PageSize = 4096;
    private const int Pages = 48;

    private static byte[] Memory() => RandomBytes(PageSize * Pages, 77);

    [Fact]
    public void Equal_memory_gives_equal_digests_by_every_route()
    {
        byte[] source = Memory();
        byte[] destination = (byte[])source.Clone();
        byte[] a = MemoryDigest.Of(source, PageSize);
        byte[] b = MemoryDigest.Of(destination, PageSize);
        Assert.Equal(MemoryDigest.Size, a.Length);
        Assert.Equal(a, b);
        Assert.True(MemoryDigest.Matches(a, b));

        // Two memory slots hashed separately into one digest.
        var slots = new MemoryDigest(Pages, PageSize);
        slots.HashPages(32, destination.AsSpan(32 * PageSize));
        slots.HashPages(0, destination.AsSpan(0, 32 * PageSize));
        Assert.Equal(a, slots.Compute());

        // Hashes that a side already holds (e.g. the sender's last-sent table), set one by one and in runs.
        ulong[] hashes = new ulong[Pages];
        PageHasher.HashAllPages(destination, PageSize, hashes, new bool[Pages]);
        var table = new MemoryDigest(Pages, PageSize);
        table.SetPages(0, hashes.AsSpan(0, 10));
        for (int p = 10; p < Pages; p++) table.SetPage(p, hashes[p]);
        Span<byte> into = stackalloc byte[MemoryDigest.Size];
        table.Compute(into);
        Assert.True(into.SequenceEqual(a));
    }

    [Fact]
    public void Changing_any_one_byte_of_any_page_changes_the_digest()
    {
        byte[] memory = Memory();
        byte[] original = MemoryDigest.Of(memory, PageSize);
        var seen = new HashSet<string> { Convert.ToHexString(original) };
        var rng = new Random(3);
        for (int page = 0; page < Pages; page++)
        {
            int offset = page * PageSize + rng.Next(PageSize);
            memory[offset] ^= 0x01;
            byte[] changed = MemoryDigest.Of(memory, PageSize);
            Assert.False(MemoryDigest.Matches(original, changed), $"a byte changed in page {page} left the digest unchanged");
            Assert.True(seen.Add(Convert.ToHexString(changed)), $"the digest after changing page {page} repeats an earlier one");
            memory[offset] ^= 0x01;
        }
        Assert.Equal(original, MemoryDigest.Of(memory, PageSize));
    }

    [Fact]
    public void Swapping_two_pages_changes_the_digest()
    {
        byte[] memory = Memory();
        byte[] original = MemoryDigest.Of(memory, PageSize);
        byte[] swapped = (byte[])memory.Clone();
        memory.AsSpan(3 * PageSize, PageSize).CopyTo(swapped.AsSpan(9 * PageSize));
        memory.AsSpan(9 * PageSize, PageSize).CopyTo(swapped.AsSpan(3 * PageSize));
        Assert.NotEqual(original, MemoryDigest.Of(swapped, PageSize));
    }

    [Fact]
    public void Page_size_and_page_count_are_bound_into_the_digest()
    {
        byte[] zeros = new byte[PageSize * 8];
        Assert.NotEqual(MemoryDigest.Of(zeros, 4096), MemoryDigest.Of(zeros, 8192));
        Assert.NotEqual(MemoryDigest.Of(zeros, 4096), MemoryDigest.Of(zeros.AsSpan(0, PageSize * 7), 4096));
    }

    [Fact]
    public void Computing_before_every_page_has_a_hash_says_which_page_is_missing()
    {
        var digest = new MemoryDigest(Pages, PageSize);
        digest.HashPages(0, Memory().AsSpan(0, 20 * PageSize));
        digest.SetPage(21, 5);
        Assert.Equal(Pages - 21, digest.MissingPages);
        var e = Assert.Throws<InvalidOperationException>(() => digest.Compute());
        Assert.Contains($"{Pages - 21} of {Pages} pages have no hash (first: page 20)", e.Message);
    }

    [Fact]
    public void Out_of_range_pages_and_bad_sizes_are_rejected()
    {
        var digest = new MemoryDigest(Pages, PageSize);
        var range = Assert.Throws<ArgumentOutOfRangeException>(() => digest.SetPage(Pages, 1));
        Assert.Contains($"outside the digest's {Pages} pages", range.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => digest.SetPage(-1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => digest.SetPages(Pages - 2, new ulong[3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => digest.HashPages(Pages - 1, new byte[2 * PageSize]));
        var size = Assert.Throws<ArgumentException>(() => digest.HashPages(0, new byte[PageSize + 64]));
        Assert.Contains("not a whole number of 4096-byte pages", size.Message);
        Assert.Throws<ArgumentException>(() => new MemoryDigest(Pages, 1000));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MemoryDigest(0, PageSize));
        Assert.Throws<ArgumentException>(() => MemoryDigest.Of(new byte[PageSize + 1], PageSize));
        Assert.Throws<ArgumentException>(() => digest.Compute(new byte[MemoryDigest.Size - 1]));
        Assert.False(MemoryDigest.Matches(new byte[MemoryDigest.Size], new byte[MemoryDigest.Size - 1]));
    }

    [Fact]
    public void Digest_layout_is_sha256_of_header_and_little_endian_hashes()
    {
        // Recomputes the documented layout independently, so the format cannot drift from docs/HASHING.md.
        byte[] memory = Memory();
        ulong[] hashes = new ulong[Pages];
        PageHasher.HashAllPages(memory, PageSize, hashes, new bool[Pages]);
        byte[] stream = new byte[24 + 8 * Pages];
        "KPSMDG01"u8.CopyTo(stream);
        BitConverter.TryWriteBytes(stream.AsSpan(8), (uint)PageSize);
        BitConverter.TryWriteBytes(stream.AsSpan(16), (ulong)Pages);
        for (int p = 0; p < Pages; p++)
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(stream.AsSpan(24 + 8 * p), hashes[p]);
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(stream), MemoryDigest.Of(memory, PageSize));
    }
}
