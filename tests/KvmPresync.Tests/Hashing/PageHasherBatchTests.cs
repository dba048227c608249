using KvmPresync.Memory;
using static KvmPresync.Tests.Hashing.HashingTestSupport;

namespace KvmPresync.Tests.Hashing;

/// <summary>The batch API reads pages straight out of a guest-memory span and agrees with the per-page API.</summary>
public sealed class PageHasherBatchTests
{
    /// <summary>64 pages of 4 KiB: random, with every fifth page left zero.</summary>
    private static byte[] GuestMemory(int pageSize = 4096, int pages = 64)
    {
        byte[] memory = RandomBytes(pageSize * pages, 42);
        for (int p = 0; p < pages; p += 5) memory.AsSpan(p * pageSize, pageSize).Clear();
        return memory;
    }

    [Theory]
    [InlineData("Scalar")]
    [InlineData("Vector128")]
    [InlineData("Vector256")]
    [InlineData("Vector512")]
    public void Batch_hashes_equal_per_page_hashes_for_any_page_order(string pathName)
    {
        HashPath path = RequirePath(pathName);
        foreach (int pageSize in new[] { 4096, 192 })
        {
            byte[] memory = GuestMemory(pageSize);
            long[] pages = [63, 0, 5, 5, 17, 1, 40, 62, 10];
            ulong[] hashes = new ulong[pages.Length];
            bool[] zero = new bool[pages.Length];
            PageHasher.HashPages(memory, pageSize, pages, hashes, zero, path);
            for (int i = 0; i < pages.Length; i++)
            {
                ReadOnlySpan<byte> page = memory.AsSpan((int)pages[i] * pageSize, pageSize);
                Assert.Equal(PageHasher.Hash(page, out bool isZero, HashPath.Scalar), hashes[i]);
                Assert.Equal(isZero, zero[i]);
                Assert.Equal(pages[i] % 5 == 0, zero[i]);
            }
        }
    }

    [Fact]
    public void Public_batch_and_all_pages_apis_agree_with_per_page_hash()
    {
        byte[] memory = GuestMemory();
        long[] pages = Enumerable.Range(0, 64).Select(p => (long)p).Reverse().ToArray();
        ulong[] batch = new ulong[64];
        bool[] batchZero = new bool[64];
        PageHasher.HashPages(memory, 4096, pages, batch, batchZero);
        ulong[] all = new ulong[64];
        bool[] allZero = new bool[64];
        PageHasher.HashAllPages(memory, 4096, all, allZero);
        for (int p = 0; p < 64; p++)
        {
            ulong single = PageHasher.Hash(memory.AsSpan(p * 4096, 4096), out bool isZero);
            Assert.Equal(single, all[p]);
            Assert.Equal(single, batch[63 - p]);
            Assert.Equal(isZero, allZero[p]);
            Assert.Equal(isZero, batchZero[63 - p]);
        }
    }

    [Fact]
    public void An_empty_page_list_hashes_nothing()
    {
        PageHasher.HashPages(GuestMemory(), 4096, ReadOnlySpan<long>.Empty, Span<ulong>.Empty, Span<bool>.Empty);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-64)]
    [InlineData(100)]
    [InlineData(4000)]
    public void Page_size_that_is_not_a_positive_multiple_of_64_is_rejected(int pageSize)
    {
        byte[] memory = new byte[64 * 4000];
        var e = Assert.Throws<ArgumentException>(() =>
            PageHasher.HashPages(memory, pageSize, new long[] { 0 }, new ulong[1], new bool[1]));
        Assert.Equal("pageSize", e.ParamName);
        Assert.Contains($"page size {pageSize} is not a positive multiple of 64 bytes", e.Message);
        e = Assert.Throws<ArgumentException>(() => PageHasher.ZeroPageHash(pageSize));
        Assert.Contains("multiple of 64", e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(4000)]
    [InlineData(4097)]
    public void Hashing_a_span_that_is_not_a_whole_page_is_rejected(int length)
    {
        var e = Assert.Throws<ArgumentException>(() => PageHasher.Hash(new byte[length], out _));
        Assert.Equal("page", e.ParamName);
        Assert.Contains($"page size {length} is not a positive multiple of 64 bytes", e.Message);
    }

    [Fact]
    public void Memory_that_is_not_whole_pages_is_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            PageHasher.HashPages(new byte[4096 * 2 + 64], 4096, new long[] { 0 }, new ulong[1], new bool[1]));
        Assert.Equal("memory", e.ParamName);
        Assert.Contains("memory of 8256 bytes is not a whole number of 4096-byte pages", e.Message);
    }

    [Fact]
    public void Output_spans_of_the_wrong_length_are_rejected()
    {
        byte[] memory = GuestMemory();
        long[] pages = [1, 2, 3, 4];
        var e = Assert.Throws<ArgumentException>(() => PageHasher.HashPages(memory, 4096, pages, new ulong[3], new bool[4]));
        Assert.Equal("hashes", e.ParamName);
        Assert.Contains("hashes has 3 entries but pages has 4", e.Message);
        e = Assert.Throws<ArgumentException>(() => PageHasher.HashPages(memory, 4096, pages, new ulong[4], new bool[5]));
        Assert.Equal("zero", e.ParamName);
        Assert.Contains("zero has 5 entries but pages has 4", e.Message);
        e = Assert.Throws<ArgumentException>(() => PageHasher.HashAllPages(memory, 4096, new ulong[63], new bool[64]));
        Assert.Contains("hashes has 63 entries but memory holds 64 pages of 4096 bytes", e.Message);
        e = Assert.Throws<ArgumentException>(() => PageHasher.HashAllPages(memory, 4096, new ulong[64], new bool[65]));
        Assert.Contains("zero has 65 entries but memory holds 64 pages of 4096 bytes", e.Message);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(64)]
    [InlineData(long.MaxValue)]
    public void Page_number_outside_memory_is_rejected_with_its_index(long badPage)
    {
        byte[] memory = GuestMemory();
        long[] pages = [0, 63, badPage];
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PageHasher.HashPages(memory, 4096, pages, new ulong[3], new bool[3]));
        Assert.Equal("pages", e.ParamName);
        Assert.Equal(badPage, e.ActualValue);
        Assert.Contains($"page number {badPage} (pages[2]) is outside the memory given: 64 pages of 4096 bytes", e.Message);
    }
}
