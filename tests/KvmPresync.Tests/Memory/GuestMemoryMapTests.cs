using KvmPresync.Memory;

namespace KvmPresync.Tests.Memory;

/// <summary>
/// <see cref="GuestMemoryMap"/>: linear page indices over regions with a hole between them, views across 1 GiB
/// chunk boundaries, and rejection of bad region sets. The large regions are memfds, free until touched.
/// </summary>
public sealed class GuestMemoryMapTests
{
    private const int Page = 4096;
    private const ulong FourGiB = 1UL << 32;

    [Fact]
    public void IndexAndAddressRoundTripOverTheHoleBelowFourGiB()
    {
        using var map = new GuestMemoryMap(
            [new GuestRegion(0, 0, GuestMemory.Create(64L << 20)), new GuestRegion(1, FourGiB, GuestMemory.Create(32L << 20))], ownsMemory: true);
        long low = (64L << 20) / Page;
        Assert.Equal(low + (32L << 20) / Page, map.PageCount);
        Assert.Equal(low, map.FirstIndexOf(1));
        foreach (long index in new[] { 0L, 1, low - 1, low, low + 1, map.PageCount - 1 })
        {
            ulong gpa = map.GuestPhysicalAddressOf(index);
            Assert.True(map.TryIndexOf(gpa, out long back));
            Assert.Equal(index, back);
            Assert.True(map.TryIndexOf(gpa + Page - 1, out back)); // any byte of the page
            Assert.Equal(index, back);
        }
        Assert.Equal((ulong)(64L << 20) - Page, map.GuestPhysicalAddressOf(low - 1));
        Assert.Equal(FourGiB, map.GuestPhysicalAddressOf(low));
        Assert.Equal((1, 0L), map.Locate(low));
        // the hole and the space past the end are no page
        foreach (ulong gpa in new[] { 64UL << 20, (3UL << 30) + 12345, FourGiB - 1, FourGiB + (32UL << 20), ulong.MaxValue })
            Assert.False(map.TryIndexOf(gpa, out _), $"0x{gpa:x}");
        Assert.Throws<ArgumentOutOfRangeException>(() => map.Page(map.PageCount));
        Assert.Throws<ArgumentOutOfRangeException>(() => map.GuestPhysicalAddressOf(-1));
        // a page written through the map is the region's page
        map.Page(low + 3)[7] = 0xAB;
        Assert.Equal(0xAB, map.Regions[1].Memory.Page(3)[7]);
    }

    [Fact]
    public void RegionOrderNotAddressOrderFixesTheIndices()
    {
        // announced high region first: its pages come first in the linear space
        using var map = new GuestMemoryMap(
            [new GuestRegion(1, FourGiB, GuestMemory.Create(8L << 20)), new GuestRegion(0, 0, GuestMemory.Create(16L << 20))], ownsMemory: true);
        Assert.Equal(FourGiB, map.GuestPhysicalAddressOf(0));
        Assert.Equal(0UL, map.GuestPhysicalAddressOf((8L << 20) / Page));
        Assert.True(map.TryIndexOf(0, out long i));
        Assert.Equal((8L << 20) / Page, i);
    }

    [Fact]
    public void PageMemoryAndPagesWorkAcrossOneGiBChunkBoundaries()
    {
        // 3 GiB low region (three 1 GiB chunks) then a high one: costs nothing until touched
        using var map = new GuestMemoryMap(
            [new GuestRegion(0, 0, GuestMemory.Create(3L << 30)), new GuestRegion(1, FourGiB, GuestMemory.Create(4L << 20))], ownsMemory: true);
        long perChunk = (1L << 30) / Page;
        long[] probes = [0, perChunk - 1, perChunk, 2 * perChunk - 1, 2 * perChunk, 3 * perChunk - 1, 3 * perChunk, map.PageCount - 1];
        foreach (long p in probes)
        {
            map.Page(p)[0] = (byte)(p % 251 + 1);
            Memory<byte> view = map.PageMemory(p);
            Assert.Equal(Page, view.Length);
            Assert.Equal((byte)(p % 251 + 1), view.Span[0]);
            Assert.True(view.Span.Overlaps(map.Page(p)), $"PageMemory({p}) is not a view of the mapping");
        }
        // contiguous runs stop at a chunk and at a region boundary
        Assert.Equal(1, map.ContiguousPages(perChunk - 1));
        Assert.Equal((int)perChunk, map.ContiguousPages(perChunk));
        Assert.Equal(1, map.ContiguousPages(3 * perChunk - 1));
        Assert.Equal((int)((4L << 20) / Page), map.ContiguousPages(3 * perChunk));
        Span<byte> two = map.Pages(perChunk - 2, 2);
        Assert.Equal(2 * Page, two.Length);
        Assert.Equal((byte)((perChunk - 1) % 251 + 1), two[Page]);
        Assert.Throws<ArgumentOutOfRangeException>(() => map.Pages(perChunk - 1, 2));     // crosses a 1 GiB chunk
        Assert.Throws<ArgumentOutOfRangeException>(() => map.Pages(3 * perChunk - 1, 2)); // crosses into the high region
    }

    [Fact]
    public void OverlappingMisalignedDuplicateOrEmptyRegionSetsAreRejected()
    {
        using var a = GuestMemory.Create(16L << 20);
        using var b = GuestMemory.Create(16L << 20);
        var overlap = Assert.Throws<ArgumentException>(() => new GuestMemoryMap([new GuestRegion(0, 0, a), new GuestRegion(1, 8L << 20, b)]));
        Assert.Contains("overlaps", overlap.Message);
        var overlapReversed = Assert.Throws<ArgumentException>(() => new GuestMemoryMap([new GuestRegion(1, 8L << 20, b), new GuestRegion(0, 0, a)]));
        Assert.Contains("overlaps", overlapReversed.Message);
        var misaligned = Assert.Throws<ArgumentException>(() => new GuestMemoryMap([new GuestRegion(0, 0, a), new GuestRegion(1, FourGiB + 512, b)]));
        Assert.Contains("aligned", misaligned.Message);
        var duplicate = Assert.Throws<ArgumentException>(() => new GuestMemoryMap([new GuestRegion(0, 0, a), new GuestRegion(0, FourGiB, b)]));
        Assert.Contains("twice", duplicate.Message);
        Assert.Throws<ArgumentException>(() => new GuestMemoryMap([]));
        // adjacent regions are fine
        using var adjacent = new GuestMemoryMap([new GuestRegion(0, 0, a), new GuestRegion(1, 16L << 20, b)]);
        Assert.Equal(2 * (16L << 20) / Page, adjacent.PageCount);
    }
}
