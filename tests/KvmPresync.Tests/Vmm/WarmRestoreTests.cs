using System.Runtime;
using KvmPresync.Memory;
using KvmPresync.Tests.Kvm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Migration;

namespace KvmPresync.Tests.Vmm;

/// <summary>
/// A migration destination restores the guest inside the downtime, so everything the restore runs must have run (or been
/// compiled) before: <see cref="MachineShell.Warm"/> runs the restore's own code, slot check included, and
/// <see cref="RamLayout.Matches"/> compares slots without LINQ or comparers (their value-type instantiations were
/// JIT-compiled at the switchover: +5 ms of downtime, measured).
/// </summary>
public sealed class WarmRestoreTests
{
    private const long LowTop = 64L << 20;

    private static MachineConfig Guest(long memory, long lowTop) => new()
    {
        Workload = Workload.Text,
        MemorySize = memory,
        LowMemoryTop = lowTop,
        FillBytes = 8L << 20,
        HeartbeatMs = 20,
        GuestImage = KvmRequirement.GuestImageOrFail(),
    };

    [Fact]
    public void Matches_compares_order_ids_addresses_and_sizes()
    {
        IReadOnlyList<RamSlot> two = RamLayout.Plan(96L << 20, LowTop);
        using GuestMemoryMap memory = RamLayout.Allocate(two);
        Assert.True(RamLayout.Matches(two, memory));
        Assert.True(RamLayout.Matches([.. two], memory));
        Assert.False(RamLayout.Matches([two[1], two[0]], memory));
        Assert.False(RamLayout.Matches([two[0]], memory));
        Assert.False(RamLayout.Matches([two[0], two[1] with { SlotId = 7 }], memory));
        Assert.False(RamLayout.Matches([two[0], two[1] with { GuestPhysicalAddress = 0x2_0000_0000 }], memory));
        Assert.False(RamLayout.Matches([two[0], two[1] with { SizeBytes = two[1].SizeBytes - 4096 }], memory));
    }

    [Fact]
    public void LowMemoryTopOf_finds_the_top_that_plans_the_map_or_says_there_is_none()
    {
        using (GuestMemoryMap two = RamLayout.Allocate(RamLayout.Plan(96L << 20, LowTop)))
            Assert.Equal(LowTop, RamLayout.LowMemoryTopOf(two));
        using (GuestMemoryMap one = RamLayout.Allocate(RamLayout.Plan(32L << 20, RamLayout.DefaultLowMemoryTop)))
            Assert.Equal(RamLayout.DefaultLowMemoryTop, RamLayout.LowMemoryTopOf(one));
        using (GuestMemoryMap one = RamLayout.Allocate(RamLayout.Plan(32L << 20, LowTop)))
            Assert.Equal(RamLayout.DefaultLowMemoryTop, RamLayout.LowMemoryTopOf(one)); // any top above it plans the same one slot
        using (GuestMemoryMap notAtZero = RamLayout.Allocate([new RamSlot(0, 0x10_0000, 32L << 20)]))
            Assert.Null(RamLayout.LowMemoryTopOf(notAtZero));
        using (GuestMemoryMap swapped = RamLayout.Allocate([new RamSlot(1, 0, LowTop), new RamSlot(0, 0x1_0000_0000, 32L << 20)]))
            Assert.Null(RamLayout.LowMemoryTopOf(swapped));
        using (GuestMemoryMap oddLow = RamLayout.Allocate([new RamSlot(0, 0, LowTop + 4096), new RamSlot(1, 0x1_0000_0000, 32L << 20)]))
            Assert.Null(RamLayout.LowMemoryTopOf(oddLow));
    }

    /// <summary>
    /// Resume into a prepared destination JIT-compiles nothing on the calling thread (the switchover's). Meaningful when this
    /// is the process's first restore (run the class alone); later in a full run the code may already be compiled by others.
    /// </summary>
    [Theory]
    [InlineData(96L << 20, LowTop)]                          // two slots around the hole
    [InlineData(64L << 20, RamLayout.DefaultLowMemoryTop)]   // one slot
    public void A_warmed_destination_resumes_without_compiling_anything(long memory, long lowTop)
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        MachineConfig config = Guest(memory, lowTop);
        using var source = Machine.Boot(kvm, config);
        source.Start();
        MachineTests.WaitFor(source, () => source.Telemetry.Ready && source.Telemetry.HeartbeatCount >= 3, "the fill and 3 heartbeats", 60);
        source.Pause();
        byte[] state = MachineSnapshotCodec.Encode(source.SaveState());
        long beats = source.Telemetry.HeartbeatCount;
        using var target = new MachineMigrationTarget(kvm, config.RamSlots);
        for (long p = 0; p < source.Memory.PageCount; p++) source.Memory.Page(p).CopyTo(target.Memory.Page(p));
        source.Stop();

        _ = JitInfo.GetCompiledMethodCount(currentThread: true);
        long before = JitInfo.GetCompiledMethodCount(currentThread: true);
        target.Resume(state);
        long compiled = JitInfo.GetCompiledMethodCount(currentThread: true) - before;

        Machine dest = target.Machine!;
        MachineTests.WaitFor(dest, () => dest.Telemetry.HeartbeatCount >= beats + 5, "5 heartbeats after the resume");
        Assert.Equal(0, dest.Telemetry.ContinuityErrors);
        Assert.Equal(0, dest.Telemetry.SelfCheckErrors);
        Assert.True(compiled == 0, $"resuming into a warmed destination JIT-compiled {compiled} method(s) inside the downtime");
    }

    /// <summary>
    /// The source's side: once a <see cref="MachineMigrationSource"/> exists (it runs the save path on a scratch VM), saving
    /// the paused guest's state — what the downtime waits for — JIT-compiles nothing on the saving thread (meaningful when
    /// this is the process's first save: run the class alone), and the scratch VM did not touch the guest.
    /// </summary>
    [Fact]
    public void A_migration_source_saves_state_without_compiling_anything()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        MachineConfig config = Guest(64L << 20, RamLayout.DefaultLowMemoryTop);
        using var machine = Machine.Boot(kvm, config);
        machine.Start();
        MachineTests.WaitFor(machine, () => machine.Telemetry.Ready && machine.Telemetry.HeartbeatCount >= 3, "the fill and 3 heartbeats", 60);
        var source = new MachineMigrationSource(machine);
        long beats = machine.Telemetry.HeartbeatCount;
        MachineTests.WaitFor(machine, () => machine.Telemetry.HeartbeatCount >= beats + 3, "3 heartbeats after the warm-up");
        source.Pause();

        _ = JitInfo.GetCompiledMethodCount(currentThread: true);
        long before = JitInfo.GetCompiledMethodCount(currentThread: true);
        byte[] state = source.SaveState();
        long compiled = JitInfo.GetCompiledMethodCount(currentThread: true) - before;

        Assert.NotEmpty(state);
        source.Resume();
        Assert.Equal(0, machine.Telemetry.ContinuityErrors);
        Assert.Equal(0, machine.Telemetry.SelfCheckErrors);
        Assert.True(compiled == 0, $"the first state save after the source was set up JIT-compiled {compiled} method(s) inside the downtime");
    }
}
