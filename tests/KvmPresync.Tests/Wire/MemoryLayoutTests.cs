using KvmPresync.Wire;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Wire;

public sealed class MemoryLayoutTests
{
    [Fact]
    public void Locates_pages_in_each_slot_with_offsets_and_linear_indices()
    {
        // Announced out of address order on purpose: lookup is by address, linear index by announced order.
        MemoryLayout layout = MemoryLayout.Create(PageSize, [new LayoutSlot(7, 0x100000, 16 * PageSize), new LayoutSlot(2, 0, 64 * PageSize)]);
        Assert.Equal(80, layout.TotalPages);
        Assert.Equal(80UL * PageSize, layout.TotalBytes);

        Assert.True(layout.TryLocate(0x100 + 3, out PageLocation high));
        Assert.Equal(new PageLocation(0, 7, 3 * PageSize, 3), high);
        Assert.True(layout.TryLocate(63, out PageLocation low));
        Assert.Equal(new PageLocation(1, 2, 63 * PageSize, 16 + 63), low);

        Assert.True(layout.Contains(0));
        Assert.False(layout.Contains(64));     // gap
        Assert.False(layout.Contains(0xFF));
        Assert.True(layout.Contains(0x100));
        Assert.True(layout.Contains(0x10F));
        Assert.False(layout.Contains(0x110));  // one past the end
        Assert.False(layout.Contains(ulong.MaxValue));
        Assert.Equal(0x100UL, layout.PageNumberOf(0x100000));
        Assert.Throws<ArgumentOutOfRangeException>(() => layout.Locate(64));
    }

    [Fact]
    public void Linear_index_maps_back_to_the_page_number()
    {
        MemoryLayout layout = TwoSlotLayout();
        for (ulong page = 0; page < 0x200; page++)
        {
            if (!layout.TryLocate(page, out PageLocation loc)) continue;
            Assert.Equal(page, layout.PageNumberOfLinearIndex(loc.LinearIndex));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => layout.PageNumberOfLinearIndex(layout.TotalPages));
    }

    [Fact]
    public void Empty_layout_is_refused() =>
        Assert.Equal(ProtocolError.SlotSizeInvalid, Assert.Throws<ProtocolException>(() => MemoryLayout.Create(PageSize, [])).Error);

    [Fact]
    public void Too_many_slots_are_refused()
    {
        var slots = Enumerable.Range(0, WireLimits.MaxSlots + 1).Select(i => new LayoutSlot((uint)i, (ulong)i * PageSize, PageSize));
        Assert.Equal(ProtocolError.TooManySlots, Assert.Throws<ProtocolException>(() => MemoryLayout.Create(PageSize, slots)).Error);
    }

    [Fact]
    public void Adjacent_slots_do_not_overlap()
    {
        MemoryLayout layout = MemoryLayout.Create(PageSize, [new LayoutSlot(0, 0, PageSize), new LayoutSlot(1, PageSize, PageSize)]);
        Assert.Equal(2, layout.TotalPages);
    }

    [Fact]
    public void Huge_pages_are_allowed()
    {
        MemoryLayout layout = MemoryLayout.SingleSlot(2 * 1024 * 1024, 1UL << 30);
        Assert.Equal(512, layout.TotalPages);
    }
}
