using System.Runtime.InteropServices;
using KvmPresync.Interop;
using KvmPresync.ProcessMemory.Interop;

namespace KvmPresync.Tests.ProcessMemory;

/// <summary>PAGEMAP_SCAN's output run (struct kp_page_region = the kernel's struct page_region) has C's layout in C#.</summary>
public sealed class ProcessLayoutTests
{
    [Fact]
    public void PageRegionMatchesC()
    {
        Assert.Equal(24, Native.LayoutSizeof("kp_page_region")); // the kernel's struct page_region (pagemap.c asserts the mirror)
        Assert.Equal(Native.LayoutSizeof("kp_page_region"), Marshal.SizeOf<PageRegion>());
        Assert.Equal(Native.LayoutOffsetof("kp_page_region", "start"), (long)Marshal.OffsetOf<PageRegion>(nameof(PageRegion.Start)));
        Assert.Equal(Native.LayoutOffsetof("kp_page_region", "end"), (long)Marshal.OffsetOf<PageRegion>(nameof(PageRegion.End)));
        Assert.Equal(Native.LayoutOffsetof("kp_page_region", "categories"), (long)Marshal.OffsetOf<PageRegion>(nameof(PageRegion.Categories)));
    }
}
