using System.Runtime.InteropServices;
using KvmPresync.Interop;
using KvmPresync.Kvm.Interop;
using KvmPresync.Wire.Interop;

namespace KvmPresync.Tests.ZeroCopy;

/// <summary>The structs shared with native/shim/net.c have the size and offsets the C compiler gave them.</summary>
public sealed class ZeroCopyLayoutTests
{
    [Theory]
    [InlineData("kp_iovec", typeof(KpIovec))]
    [InlineData("kp_zc_stats", typeof(KpZcStats))]
    public void Struct_size_matches_C(string cType, Type managed)
    {
        Assert.Equal(Native.LayoutSizeof(cType), Marshal.SizeOf(managed));
    }

    [Theory]
    [InlineData("kp_iovec", "base", typeof(KpIovec), nameof(KpIovec.Base))]
    [InlineData("kp_iovec", "len", typeof(KpIovec), nameof(KpIovec.Len))]
    [InlineData("kp_zc_stats", "completed_lo_hi_ranges", typeof(KpZcStats), nameof(KpZcStats.CompletedLoHiRanges))]
    [InlineData("kp_zc_stats", "completed_sends", typeof(KpZcStats), nameof(KpZcStats.CompletedSends))]
    [InlineData("kp_zc_stats", "copied_sends", typeof(KpZcStats), nameof(KpZcStats.CopiedSends))]
    [InlineData("kp_zc_stats", "last_hi", typeof(KpZcStats), nameof(KpZcStats.LastHi))]
    public void Field_offset_matches_C(string cType, string cField, Type managed, string field)
    {
        long native = Native.LayoutOffsetof(cType, cField);
        Assert.True(native >= 0, $"{cType}.{cField} is unknown to the shim");
        Assert.Equal(native, (long)Marshal.OffsetOf(managed, field));
    }

    [Fact]
    public void Kp_iovec_is_struct_iovec_on_this_platform()
    {
        // net.c hands kp_iovec arrays to the kernel as struct iovec (static asserts there); the C# side sees the same 16 bytes.
        Assert.Equal(16, Native.LayoutSizeof("kp_iovec"));
        Assert.Equal(8, Native.LayoutOffsetof("kp_iovec", "len"));
        Assert.Equal(-1, Native.LayoutSizeof("iovec"));
        Assert.Equal(-1, Native.LayoutOffsetof("kp_iovec", "iov_len"));
    }
}
