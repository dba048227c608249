using KvmPresync.Memory;
using static KvmPresync.Tests.Hashing.HashingTestSupport;

namespace KvmPresync.Tests.Hashing;

/// <summary>Every SIMD path computes exactly the scalar reference function, on random and edge inputs.</summary>
public sealed class PageHasherPathTests
{
    public static readonly TheoryData<string> VectorPaths = new("Vector128", "Vector256", "Vector512");

    // Sizes that exercise the 256-byte main loop, each possible 1–3 block tail, and large pages.
    private static readonly int[] Sizes = [64, 128, 192, 256, 320, 448, 1024, 4032, 4096, 4160, 8192, 65536];

    [Theory]
    [MemberData(nameof(VectorPaths))]
    public void Vector_path_matches_scalar_on_random_pages_of_every_size(string pathName)
    {
        HashPath path = RequirePath(pathName);
        int seed = 1;
        foreach (int size in Sizes)
        {
            for (int trial = 0; trial < 20; trial++)
            {
                byte[] page = RandomBytes(size, seed++);
                ulong expected = PageHasher.Hash(page, out bool expectedZero, HashPath.Scalar);
                ulong actual = PageHasher.Hash(page, out bool actualZero, path);
                Assert.True(expected == actual, $"{path} gave {actual:X16}, scalar {expected:X16} for a random {size}-byte page (seed {seed - 1})");
                Assert.False(actualZero);
                Assert.Equal(expectedZero, actualZero);
            }
        }
    }

    [Theory]
    [MemberData(nameof(VectorPaths))]
    public void Vector_path_matches_scalar_on_zero_and_all_ones_pages(string pathName)
    {
        HashPath path = RequirePath(pathName);
        foreach (int size in Sizes)
        {
            byte[] zeros = new byte[size];
            byte[] ones = Enumerable.Repeat((byte)0xFF, size).ToArray();
            Assert.Equal(PageHasher.Hash(zeros, out _, HashPath.Scalar), PageHasher.Hash(zeros, out bool zeroIsZero, path));
            Assert.True(zeroIsZero);
            Assert.Equal(PageHasher.Hash(ones, out _, HashPath.Scalar), PageHasher.Hash(ones, out bool onesIsZero, path));
            Assert.False(onesIsZero);
            Assert.NotEqual(HashOn(path, zeros), HashOn(path, ones));
        }
    }

    [Fact]
    public void One_byte_changed_at_every_position_changes_the_hash_identically_on_every_path()
    {
        HashPath[] paths = AcceleratedPaths();
        foreach (byte[] original in new[] { new byte[4096], RandomBytes(4096, 7) })
        {
            var seen = new Dictionary<ulong, string>();
            ulong baseHash = HashOn(HashPath.Scalar, original);
            seen.Add(baseHash, "original");
            byte[] page = (byte[])original.Clone();
            foreach (byte flip in new byte[] { 0x01, 0x80, 0xFF })
            {
                for (int pos = 0; pos < page.Length; pos++)
                {
                    page[pos] ^= flip;
                    ulong reference = HashOn(HashPath.Scalar, page);
                    foreach (HashPath path in paths)
                    {
                        ulong h = PageHasher.Hash(page, out bool isZero, path);
                        Assert.True(h == reference, $"{path} disagrees with scalar after xor 0x{flip:X2} at byte {pos}");
                        Assert.False(isZero);
                    }
                    Assert.True(seen.TryAdd(reference, $"xor 0x{flip:X2} at {pos}"),
                        $"xor 0x{flip:X2} at byte {pos} collides with {seen.GetValueOrDefault(reference)}");
                    page[pos] ^= flip;
                }
            }
        }
    }

    [Theory]
    [InlineData("Scalar")]
    [InlineData("Vector128")]
    [InlineData("Vector256")]
    [InlineData("Vector512")]
    public void IsZero_is_true_only_when_every_byte_is_zero(string pathName)
    {
        HashPath path = RequirePath(pathName);
        foreach (int size in new[] { 64, 192, 4096 })
        {
            byte[] page = new byte[size];
            PageHasher.Hash(page, out bool isZero, path);
            Assert.True(isZero, $"{path}: an all-zero {size}-byte page was not reported zero");
            for (int pos = 0; pos < size; pos++)
            {
                page[pos] = 1;
                PageHasher.Hash(page, out isZero, path);
                Assert.False(isZero, $"{path}: a {size}-byte page with byte {pos} set was reported zero");
                page[pos] = 0;
            }
        }
    }

    [Theory]
    [InlineData("Scalar")]
    [InlineData("Vector128")]
    [InlineData("Vector256")]
    [InlineData("Vector512")]
    public void Zero_page_hash_matches_hashing_zeros(string pathName)
    {
        HashPath path = RequirePath(pathName);
        Assert.Equal(PageHasher.ZeroPage4096Hash, HashOn(path, new byte[4096]));
        foreach (int size in Sizes)
            Assert.Equal(PageHasher.ZeroPageHash(size), HashOn(path, new byte[size]));
    }

    [Fact]
    public void Best_path_is_the_widest_accelerated_one_and_public_hash_uses_it()
    {
        HashPath expected = AcceleratedPaths().Max();
        Assert.Equal(expected, PageHasher.BestPath);
        byte[] page = RandomBytes(4096, 11);
        Assert.Equal(HashOn(HashPath.Scalar, page), PageHasher.Hash(page, out _));
    }

    [Fact]
    public void An_unknown_path_is_refused_with_a_clear_error()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PageHasher.Hash(new byte[4096], out _, (HashPath)99));
        Assert.Contains("unknown hash path", e.Message);
    }
}
