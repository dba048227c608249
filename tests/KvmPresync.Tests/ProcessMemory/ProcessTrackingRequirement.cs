using KvmPresync.ProcessMemory;

namespace KvmPresync.Tests.ProcessMemory;

/// <summary>Skips a test, with the reason, only when this kernel cannot track writes exactly (no userfaultfd WP_ASYNC or PAGEMAP_SCAN).</summary>
internal static class ProcessTrackingRequirement
{
    public static void SkipUnlessAvailable()
    {
        if (!UserfaultfdHandle.IsAvailable(out string reason))
            Assert.Skip($"needs userfaultfd async write protection and PAGEMAP_SCAN (Linux >= 6.7): {reason}");
    }

    /// <summary>A native artifact next to the tests; fails (never skips) when missing: the build (make -C native) produces it.</summary>
    public static string NativeOrFail(string name)
    {
        string path = Path.Combine(AppContext.BaseDirectory, name);
        Assert.True(File.Exists(path), $"{path} missing: the build (make -C native) should have produced it");
        return path;
    }
}
