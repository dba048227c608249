using KvmPresync.Kvm;
using KvmPresync.Memory;
using KvmPresync.Tests.Kvm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Devices;

namespace KvmPresync.Tests.Vmm;

/// <summary>The VMM runs the workload guests on real KVM; pause/resume and save/restore keep the guest's continuity.</summary>
public sealed class MachineTests
{
    internal static MachineConfig SmallIdle(Workload w = Workload.Idle) => new()
    {
        Workload = w,
        MemorySize = 64L << 20,
        FillBytes = 16L << 20,
        HeartbeatMs = 20,
        GuestImage = KvmRequirement.GuestImageOrFail(),
    };

    internal static void WaitFor(Machine m, Func<bool> condition, string what, int seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (m.Completion.IsCompleted)
                Assert.Fail($"machine ended while waiting for {what}: {m.Completion.Result.Message}");
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"timed out after {seconds} s waiting for {what}; console: {m.Telemetry.Console}");
            Thread.Sleep(5);
        }
    }

    [Fact]
    public void IdleGuestBootsFillsMemoryAndHeartbeats()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var m = Machine.Boot(kvm, SmallIdle());
        m.Start();
        // the guest heartbeats while it fills memory too (on a host whose first touch of a page is slow, 5 beats come first)
        WaitFor(m, () => m.Telemetry.Ready, "the guest's memory fill");
        long beats = m.Telemetry.HeartbeatCount;
        WaitFor(m, () => m.Telemetry.HeartbeatCount >= beats + 5, "5 heartbeats after the fill");
        Assert.Equal(0, m.Telemetry.ContinuityErrors);
        Assert.Equal(0, m.Telemetry.SelfCheckErrors);
        // the guest really filled memory: a page in the middle of the fill holds non-zero data
        ulong heapStart = BitConverter.ToUInt64(m.Memory.Page((long)GuestAbi.BootInfoGpa / m.Memory.PageSize)[GuestAbi.BootInfo.HeapStart..]);
        long first = (long)heapStart / m.Memory.PageSize;
        long nonZero = 0;
        for (long p = first; p < first + 2048; p++) if (m.Memory.Page(p).IndexOfAnyExcept((byte)0) >= 0) nonZero++;
        Assert.True(nonZero > 1000, $"only {nonZero} of 2048 heap pages hold data");
    }

    [Fact]
    public void PauseStopsTheGuestAndResumeContinuesWithoutAGap()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var m = Machine.Boot(kvm, SmallIdle());
        m.Start();
        WaitFor(m, () => m.Telemetry.HeartbeatCount >= 3, "3 heartbeats");
        m.Pause();
        long beats = m.Telemetry.HeartbeatCount;
        long t = m.GuestTimeUs;
        Thread.Sleep(200);
        Assert.Equal(beats, m.Telemetry.HeartbeatCount);
        Assert.Equal(t, m.GuestTimeUs);
        m.Resume();
        WaitFor(m, () => m.Telemetry.HeartbeatCount >= beats + 3, "3 more heartbeats");
        Assert.Equal(0, m.Telemetry.ContinuityErrors);
        Assert.Equal(0, m.Telemetry.SelfCheckErrors);
    }

    [Fact]
    public void SaveStateRestoreIntoFreshVmContinuesHeartbeatSequence()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var source = Machine.Boot(kvm, SmallIdle(Workload.Text));
        source.Start();
        WaitFor(source, () => source.Telemetry.HeartbeatCount >= 5, "5 heartbeats");
        source.Pause();
        MachineSnapshot snap = source.SaveState();
        Heartbeat last = snap.Devices.Telemetry.LastHeartbeat!.Value;

        // fresh memory holding a copy of the source's
        GuestMemoryMap copy = CopyOf(source.Memory);
        source.Stop();

        using var dest = Machine.Restore(kvm, snap, copy);
        dest.Start();
        WaitFor(dest, () => dest.Telemetry.HeartbeatCount >= snap.Devices.Telemetry.HeartbeatCount + 5, "5 heartbeats after restore");
        Heartbeat now = dest.Telemetry.LastHeartbeat!.Value;
        Assert.True(now.Seq >= last.Seq + 5);
        Assert.Equal(0, dest.Telemetry.ContinuityErrors); // first beat after restore had seq = last+1 and prev = last sum
        Assert.Equal(0, dest.Telemetry.SelfCheckErrors);
        Assert.True(dest.Telemetry.ProgressTotal >= snap.Devices.Telemetry.ProgressTotal);
    }

    [Fact]
    public void RestoreIntoMemoryWithALostPageIsDetectedByTheGuest()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        var cfg = SmallIdle() with { HeartbeatMs = 5 };
        using var source = Machine.Boot(kvm, cfg);
        source.Start();
        WaitFor(source, () => source.Telemetry.HeartbeatCount >= 3, "3 heartbeats");
        source.Pause();
        MachineSnapshot snap = source.SaveState();
        GuestMemoryMap copy = CopyOf(source.Memory);
        source.Stop();
        // "lose" the whole filled heap except boot structures: the guest's self-check must notice
        ulong heapStart = HeapStart(copy);
        for (long p = (long)heapStart / copy.PageSize; p < copy.PageCount; p++) copy.Page(p).Clear();
        using var dest = Machine.Restore(kvm, snap, copy);
        dest.Start();
        WaitFor(dest, () => dest.Telemetry.SelfCheckErrors > 0 || dest.Completion.IsCompleted, "the guest's self-check to report lost pages");
    }

    /// <summary>Fresh memory in the same slots holding a copy of <paramref name="memory"/> (owned by the returned map).</summary>
    internal static GuestMemoryMap CopyOf(GuestMemoryMap memory)
    {
        GuestMemoryMap copy = RamLayout.Allocate(RamLayout.SlotsOf(memory));
        for (long p = 0; p < memory.PageCount; p++) memory.Page(p).CopyTo(copy.Page(p));
        return copy;
    }

    /// <summary>The heap start the VMM wrote into the boot info (a guest-virtual address = linear index × page size).</summary>
    internal static ulong HeapStart(GuestMemoryMap memory) =>
        BitConverter.ToUInt64(memory.Page((long)GuestAbi.BootInfoGpa / memory.PageSize)[GuestAbi.BootInfo.HeapStart..]);

    [Fact]
    public void MissingGuestImageSaysHowToBuildIt()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        var e = Assert.Throws<FileNotFoundException>(() => Machine.Boot(kvm, SmallIdle() with { GuestImage = "/nonexistent/workload.bin" }));
        Assert.Contains("make -C native", e.Message);
    }
}

/// <summary>A guest doing something the VMM does not emulate ends the machine with an error naming the exit and the guest's RIP.</summary>
public sealed class UnexpectedExitTests : IDisposable
{
    private readonly string _image = Path.GetTempFileName();

    [Fact]
    public async Task OutToAnUnknownPortIsReportedWithTheRip()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        // mov dx, 0x600; out dx, eax; jmp $
        File.WriteAllBytes(_image, [0x66, 0xBA, 0x00, 0x06, 0xEF, 0xEB, 0xFE]);
        using var m = Machine.Boot(kvm, new MachineConfig { Workload = Workload.Idle, MemorySize = 16L << 20, FillBytes = 0, GuestImage = _image });
        m.Start();
        MachineExit exit = await m.Completion.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal(MachineExitKind.Error, exit.Kind);
        Assert.Contains("port 0x600", exit.Message);
        Assert.Contains("RIP 0x100005", exit.Message); // just after the 5-byte instruction pair
        Assert.Equal(0x100005UL, exit.Rip);
    }

    public void Dispose() => File.Delete(_image);
}
