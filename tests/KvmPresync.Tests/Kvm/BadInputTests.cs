using KvmPresync.Kvm.Interop;
using KvmPresync.Kvm;
using KvmPresync.Memory;

namespace KvmPresync.Tests.Kvm;

/// <summary>Bad input gets a clear error, not a crash.</summary>
public sealed class BadInputTests
{
    [Fact]
    public void MissingKvmDeviceSaysWhatToDo()
    {
        var e = Assert.Throws<KvmException>(() => KvmSystem.Open("/nonexistent/kvm"));
        Assert.Equal(2, e.Errno);
        Assert.Contains("does not exist", e.Message);
        Assert.Contains("load a KVM module", e.Message);
        Assert.False(KvmSystem.IsAvailable(out string reason, "/nonexistent/kvm"));
        Assert.Contains("/nonexistent/kvm", reason);
    }

    [Fact]
    public void MemorySizeNotAPageMultipleIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => GuestMemory.Create(4096 * 3 + 100));
        Assert.Contains("not a positive multiple of the page size", e.Message);
        Assert.Throws<ArgumentException>(() => GuestMemory.Create(0));
    }

    [Fact]
    public void OverlappingSlotsAreRefused()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var vm = kvm.CreateVm();
        using var a = GuestMemory.Create(1 << 20);
        using var b = GuestMemory.Create(1 << 20);
        vm.AddMemorySlot(0, 0, a);
        var e = Assert.Throws<ArgumentException>(() => vm.AddMemorySlot(1, 0x80000, b));
        Assert.Contains("overlaps slot 0", e.Message);
        var dup = Assert.Throws<ArgumentException>(() => vm.AddMemorySlot(0, 0x200000, b));
        Assert.Contains("already exists", dup.Message);
        vm.AddMemorySlot(1, 0x100000, b); // adjacent is fine
        Assert.Equal(2, vm.Slots.Count);
    }

    [Fact]
    public void MisalignedSlotIsRefused()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var vm = kvm.CreateVm();
        using var a = GuestMemory.Create(1 << 20);
        var e = Assert.Throws<ArgumentException>(() => vm.AddMemorySlot(0, 0x1234, a));
        Assert.Contains("not aligned to the page size", e.Message);
    }

    [Fact]
    public void DirtyBitmapOfWrongSizeAndMisalignedClearAreRefused()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var vm = kvm.CreateVm();
        using var a = GuestMemory.Create(1 << 20); // 256 pages = 4 words
        MemorySlot slot = vm.AddMemorySlot(0, 0, a);
        Assert.Contains("needs 4 words", Assert.Throws<ArgumentException>(() => vm.GetDirtyLog(slot, new ulong[3])).Message);
        Assert.Contains("multiples of 64", Assert.Throws<ArgumentException>(() => vm.ClearDirtyLog(slot, 10, 64, [1UL])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => vm.ClearDirtyLog(slot, 256, 64, [1UL]));
    }

    [Fact]
    public void UnexpectedExitIsReportedWithTheGuestRip()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        // A guest that does OUT to an unknown port is reported by the raw vCPU with its exit details.
        using var g = RawGuest.Create(kvm, 16L << 20, [Array.Empty<long>()]);
        var exit = g.RunWithWatchdog();
        Assert.Equal(KvmExitReason.Io, exit.Reason);
        Assert.Equal(RawGuest.PhasePort, exit.Port);
        Assert.True(g.Vcpu.GetRegs().Rip > KvmPresync.Vmm.GuestAbi.LoadGpa);
    }
}
