using System.Buffers.Binary;
using System.Numerics;
using KvmPresync.Memory;
using static KvmPresync.Tests.Hashing.HashingTestSupport;

namespace KvmPresync.Tests.Hashing;

/// <summary>
/// Statistical and structural quality of the page hash: avalanche, distribution, distinct outputs for
/// near-identical and rearranged pages. Bounds are many standard deviations wide, so they fail only on a real defect.
/// </summary>
public sealed class PageHasherQualityTests
{
    private static ulong H(ReadOnlySpan<byte> page) => PageHasher.Hash(page, out _);

    [Fact]
    public void Flipping_one_random_bit_of_a_random_page_changes_about_half_the_output_bits()
    {
        const int trials = 20_000;
        var rng = new Random(2024);
        byte[] page = new byte[4096];
        long totalFlipped = 0;
        int[] perBit = new int[64];
        for (int t = 0; t < trials; t++)
        {
            rng.NextBytes(page);
            ulong before = H(page);
            int bit = rng.Next(page.Length * 8);
            page[bit >> 3] ^= (byte)(1 << (bit & 7));
            ulong diff = before ^ H(page);
            totalFlipped += BitOperations.PopCount(diff);
            for (int b = 0; b < 64; b++) perBit[b] += (int)((diff >> b) & 1);
        }
        AssertAvalanche(totalFlipped, perBit, trials, "random pages");
    }

    [Fact]
    public void Flipping_each_bit_of_a_zero_page_changes_about_half_the_output_bits()
    {
        byte[] page = new byte[4096];
        ulong before = H(page);
        long totalFlipped = 0;
        int[] perBit = new int[64];
        for (int bit = 0; bit < page.Length * 8; bit++)
        {
            page[bit >> 3] ^= (byte)(1 << (bit & 7));
            ulong diff = before ^ H(page);
            page[bit >> 3] ^= (byte)(1 << (bit & 7));
            totalFlipped += BitOperations.PopCount(diff);
            for (int b = 0; b < 64; b++) perBit[b] += (int)((diff >> b) & 1);
        }
        AssertAvalanche(totalFlipped, perBit, page.Length * 8, "the zero page");
    }

    private static void AssertAvalanche(long totalFlipped, int[] perBit, int trials, string what)
    {
        // Ideal: Binomial(64, 1/2) per trial, mean 32, sd 4; the mean over n trials has sd 4/sqrt(n) (< 0.03 here).
        double mean = (double)totalFlipped / trials;
        Assert.InRange(mean, 31.7, 32.3);
        // Each output bit should flip with probability 1/2; sd of the rate is 0.5/sqrt(n) (< 0.0036 here).
        for (int b = 0; b < 64; b++)
        {
            double rate = (double)perBit[b] / trials;
            Assert.True(rate is > 0.47 and < 0.53, $"output bit {b} flipped in {rate:P2} of {trials} single-bit changes to {what}; expected about 50%");
        }
    }

    [Fact]
    public void A_quarter_million_near_identical_pages_have_distinct_well_spread_hashes()
    {
        // Page i is one random page with word (i mod 512) replaced by i: all pages distinct, each differing
        // from the others in one or two words — the hard case for an accumulator hash.
        const int count = 1 << 18;
        byte[] page = RandomBytes(4096, 99);
        ulong[] hashes = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            Span<byte> word = page.AsSpan(i % 512 * 8, 8);
            ulong saved = BinaryPrimitives.ReadUInt64LittleEndian(word);
            BinaryPrimitives.WriteUInt64LittleEndian(word, (ulong)i);
            hashes[i] = H(page);
            BinaryPrimitives.WriteUInt64LittleEndian(word, saved);
        }
        Assert.Equal(0, CountCollisions(hashes, h => h));
        // Any 24 bits alone should collide like random 24-bit values: n - E[distinct] = 2037 for n = 2^18
        // (sd about 45), whether taken from the bottom, middle or top of the hash.
        foreach (int shift in new[] { 0, 20, 40 })
            Assert.InRange(CountCollisions(hashes, h => (h >> shift) & 0xFF_FFFF), 1850, 2230);
    }

    [Fact]
    public void Random_pages_have_distinct_hashes()
    {
        const int count = 10_000;
        var rng = new Random(5);
        byte[] page = new byte[4096];
        ulong[] hashes = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            rng.NextBytes(page);
            hashes[i] = H(page);
        }
        Assert.Equal(0, CountCollisions(hashes, h => h));
    }

    private static int CountCollisions(ulong[] hashes, Func<ulong, ulong> key)
    {
        ulong[] keys = hashes.Select(key).ToArray();
        Array.Sort(keys);
        int collisions = 0;
        for (int i = 1; i < keys.Length; i++)
            if (keys[i] == keys[i - 1]) collisions++;
        return collisions;
    }

    [Theory]
    [InlineData(64, 4096)]   // 64-byte blocks: one block per lane-group step
    [InlineData(256, 4096)]  // 256-byte chunks: same lane group, different position
    [InlineData(8, 256)]     // adjacent words, including the lane pairs the round couples
    [InlineData(4, 64)]      // 32-bit halves
    [InlineData(4096, 8192)] // the two halves of an 8 KiB page
    public void Swapping_any_two_chunks_changes_the_hash(int chunk, int pageSize)
    {
        byte[] original = RandomBytes(pageSize, chunk);
        var seen = new Dictionary<ulong, (int, int)> { [H(original)] = (-1, -1) };
        int chunks = pageSize / chunk;
        byte[] page = (byte[])original.Clone();
        for (int a = 0; a < chunks; a++)
        {
            for (int b = a + 1; b < chunks; b++)
            {
                Swap(page, a * chunk, b * chunk, chunk);
                ulong h = H(page);
                Assert.True(seen.TryAdd(h, (a, b)),
                    $"swapping {chunk}-byte chunks {a} and {b} gives the same hash as swap {seen.GetValueOrDefault(h)} (-1 = unswapped)");
                Swap(page, a * chunk, b * chunk, chunk);
            }
        }
    }

    private static void Swap(byte[] page, int a, int b, int length)
    {
        Span<byte> tmp = stackalloc byte[length];
        page.AsSpan(a, length).CopyTo(tmp);
        page.AsSpan(b, length).CopyTo(page.AsSpan(a, length));
        tmp.CopyTo(page.AsSpan(b, length));
    }

    [Fact]
    public void Length_is_part_of_the_hash()
    {
        Assert.NotEqual(PageHasher.ZeroPageHash(4096), PageHasher.ZeroPageHash(8192));
        byte[] page = RandomBytes(4096, 3);
        byte[] longer = new byte[4096 + 64];
        page.CopyTo(longer, 0);
        Assert.NotEqual(H(page), H(longer));
    }

    [Fact]
    public void Constants_are_the_documented_SplitMix64_sequence()
    {
        ulong state = PageHasher.ConstantSeed;
        ulong Next()
        {
            ulong z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
        foreach (ulong k in PageHasher.Keys) Assert.Equal(Next(), k);
        foreach (ulong s in PageHasher.Steps) Assert.Equal(Next() | 1, s);
        foreach (ulong f in PageHasher.FinalTweaks) Assert.Equal(Next(), f);
        Assert.Equal(PageHasher.LaneCount, PageHasher.Keys.Length);
        Assert.Equal(PageHasher.LaneCount, PageHasher.FinalTweaks.Length);
    }
}
