using KvmPresync.Kvm;

namespace KvmPresync.Tests.Kvm;

/// <summary>Opens /dev/kvm for a test, or skips the test with the reason KVM is not usable here.</summary>
internal static class KvmRequirement
{
    public static KvmSystem OpenOrSkip()
    {
        if (!KvmSystem.IsAvailable(out string reason))
            Assert.Skip($"needs /dev/kvm: {reason}");
        return KvmSystem.Open();
    }

    /// <summary>The workload guest image; fails (never skips) when it is missing: the build always produces it (`make -C native`).</summary>
    public static string GuestImageOrFail()
    {
        string path = KvmPresync.Vmm.MachineConfig.DefaultGuestImage;
        Assert.True(File.Exists(path), $"workload guest image {path} missing: the build (make -C native) should have produced it");
        return path;
    }
}
