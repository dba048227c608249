using KvmPresync.Core;
using KvmPresync.ProcessMemory.Interop;

namespace KvmPresync.ProcessMemory;

/// <summary>
/// A userfaultfd in THIS process with async write protection (UFFD_FEATURE_WP_ASYNC): what the preload library
/// opens inside a tracked program, for a VMM that tracks its own guest memory (and for tests). Registered ranges are
/// harvested with <see cref="ProcessDirtyPageSource"/> over pid 0. Disposing it drops every registration.
/// </summary>
public sealed class UserfaultfdHandle : FileDescriptorHandle
{
    private UserfaultfdHandle(int fd, ulong features) : base(fd)
    {
        Features = features & ~ProcessNative.FeatureUserModeOnly;
        UserModeOnly = (features & ProcessNative.FeatureUserModeOnly) != 0;
    }

    /// <summary>The negotiated UFFD_FEATURE_* bits.</summary>
    public ulong Features { get; }

    /// <summary>Opened with UFFD_USER_MODE_ONLY (vm.unprivileged_userfaultfd = 0 and no privilege); async WP works all the same.</summary>
    public bool UserModeOnly { get; }

    /// <summary>Opens a userfaultfd with WP_ASYNC (plus WP_UNPOPULATED and WP_HUGETLBFS_SHMEM where the kernel has them).</summary>
    public static UserfaultfdHandle Open()
    {
        long fd = ProcessNative.UffdOpen(ProcessNative.FeatureWpAsync | ProcessNative.FeatureWpUnpopulated | ProcessNative.FeatureWpHugetlbfsShmem, out ulong features);
        if (fd < 0)
            throw new ProcessTrackingException("userfaultfd with UFFD_FEATURE_WP_ASYNC", (int)-fd,
                "exact write tracking needs Linux >= 6.7 (userfaultfd async write protection) built with CONFIG_USERFAULTFD");
        return new UserfaultfdHandle((int)fd, features);
    }

    /// <summary>
    /// Registers [<paramref name="address"/>, +<paramref name="length"/>) in write-protect mode. With
    /// <paramref name="arm"/> the range is write-protected at once, so pages written before count as clean; without it,
    /// pages already present are reported as written by the first harvest (nothing written before is missed).
    /// </summary>
    public void RegisterWriteProtect(nint address, long length, bool arm = false)
    {
        int r = ProcessNative.UffdRegisterWp(Fd, (ulong)address, (ulong)length, arm ? ProcessNative.UffdArm : 0);
        if (r < 0)
            throw new ProcessTrackingException($"UFFDIO_REGISTER (write-protect) [0x{address:x}, 0x{address + (nint)length:x})", -r,
                "the range must be page aligned and mapped; anonymous memory needs UFFD_FEATURE_WP_UNPOPULATED, a range registered by another userfaultfd cannot be registered again");
    }

    /// <summary>
    /// Whether this kernel can track writes exactly (userfaultfd WP_ASYNC and PAGEMAP_SCAN with a registered range):
    /// tried on one page of this process. <paramref name="reason"/> says what is missing.
    /// </summary>
    public static unsafe bool IsAvailable(out string reason)
    {
        long fd = ProcessNative.UffdOpen(ProcessNative.FeatureWpAsync | ProcessNative.FeatureWpUnpopulated, out _);
        if (fd < 0)
        {
            reason = $"userfaultfd with UFFD_FEATURE_WP_ASYNC: errno {-fd} (needs Linux >= 6.7, CONFIG_USERFAULTFD)";
            return false;
        }
        using var uffd = new UserfaultfdHandle((int)fd, 0);
        using var page = KvmPresync.Memory.GuestMemory.Create(Environment.SystemPageSize, name: "kvmpresync-probe");
        int r = ProcessNative.UffdRegisterWp(uffd.Fd, (ulong)page.Address, (ulong)page.Size, 0);
        if (r < 0)
        {
            reason = $"UFFDIO_REGISTER in write-protect mode: errno {-r}";
            return false;
        }
        using PagemapHandle pm = PagemapHandle.Open(0);
        PageRegion region;
        long n = ProcessNative.PagemapScanWritten(pm.Descriptor, (ulong)page.Address, (ulong)(page.Address + (nint)page.Size), &region, 1, out _);
        if (n < 0)
        {
            reason = $"PAGEMAP_SCAN on /proc/self/pagemap: errno {-n} (needs Linux >= 6.7)";
            return false;
        }
        reason = "";
        return true;
    }
}
