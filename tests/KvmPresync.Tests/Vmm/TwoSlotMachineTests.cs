using KvmPresync.Kvm;
using KvmPresync.Memory;
using KvmPresync.Tests.Kvm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Devices;

namespace KvmPresync.Tests.Vmm;

/// <summary>
/// A guest whose RAM spans two KVM slots — below a (small, for cheapness) low-memory top at GPA 0 and the rest from
/// 4 GiB, with the hole between — runs, fills and self-checks across both; the dirty log reports both slots' pages at
/// their linear indices; save/restore keeps its continuity (real /dev/kvm).
/// </summary>
public sealed class TwoSlotMachineTests
{
    private const long LowTop = 64L << 20, Total = 128L << 20;
    private const long LowPages = LowTop / 4096;
    private const ulong PageTag = 0x4B50000000000000; // content.c: word 0 of a data page = tag | guest page number

    private static MachineConfig TwoSlots(Workload w) => new()
    {
        Workload = w,
        MemorySize = Total,
        LowMemoryTop = LowTop,
        HeartbeatMs = 20,
        GuestImage = KvmRequirement.GuestImageOrFail(),
    };

    [Fact]
    public void RamAboveTheLowTopIsASecondSlotAtFourGiB()
    {
        Assert.Equal([new RamSlot(0, 0, LowTop), new RamSlot(1, 0x1_0000_0000, Total - LowTop)], TwoSlots(Workload.Idle).RamSlots);
        Assert.Equal([new RamSlot(0, 0, LowTop)], (TwoSlots(Workload.Idle) with { MemorySize = LowTop }).RamSlots);
        Assert.Equal([new RamSlot(0, 0, 3L << 30), new RamSlot(1, 0x1_0000_0000, 5L << 30)], new MachineConfig { MemorySize = 8L << 30 }.RamSlots);
        Assert.Throws<ArgumentOutOfRangeException>(() => (TwoSlots(Workload.Idle) with { LowMemoryTop = (64L << 20) + 4096 }).RamSlots);
        Assert.Throws<ArgumentOutOfRangeException>(() => (TwoSlots(Workload.Idle) with { LowMemoryTop = 5L << 30 }).RamSlots);
    }

    [Fact]
    public void FillRunsAcrossTheHoleIntoTheHighSlotAndTheDirtyLogSeesItAtLinearIndices()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var m = Machine.Boot(kvm, TwoSlots(Workload.Idle) with { FillBytes = 96L << 20 });
        Assert.Equal(2, m.Slots.Count);
        Assert.Equal(0x1_0000_0000UL, m.Slots[1].GuestPhysicalAddress);
        Assert.Equal(Total / 4096, m.Memory.PageCount);
        var source = new KvmDirtyPageSource(m.Vm, m.Slots, m.VmmWrites);
        var dirty = new DirtyBitmap(source.PageCount);
        source.Harvest(dirty); // the VMM's own writes (tables, image, boot info)
        m.Start();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!(m.Telemetry.Ready && m.Telemetry.HeartbeatCount >= 10))
        {
            Assert.False(m.Completion.IsCompleted, m.Telemetry.Console);
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the fill and 10 heartbeats");
            source.Harvest(dirty);
            Thread.Sleep(20);
        }
        m.Pause();
        source.Harvest(dirty);
        Assert.Equal(0, m.Telemetry.ContinuityErrors);
        Assert.Equal(0, m.Telemetry.SelfCheckErrors);

        long heapFirst = (long)MachineTests.HeapStart(m.Memory) / 4096, fillEnd = heapFirst + (96L << 20) / 4096;
        Assert.True(fillEnd > LowPages + 1000, "the fill must reach well into the high slot");
        long highData = 0, highDirty = 0;
        for (long p = 0; p < m.Memory.PageCount; p++)
        {
            Span<byte> page = m.Memory.Page(p);
            bool hasData = page.IndexOfAnyExcept((byte)0) >= 0;
            if (hasData) Assert.True(dirty[p], $"page {p} (GPA 0x{m.Memory.GuestPhysicalAddressOf(p):x}) holds data but was never reported dirty");
            if (p < LowPages) continue;
            if (dirty[p])
            {
                highDirty++;
                Assert.True(p < fillEnd, $"high page {p} is reported dirty but lies past the fill (ends at {fillEnd})");
            }
            if (!hasData) continue;
            highData++;
            // the guest's page number for this page is its linear index: slot 1's pages follow slot 0's
            Assert.Equal(PageTag | (ulong)p, BitConverter.ToUInt64(page));
        }
        Assert.True(highData > (fillEnd - LowPages) * 9 / 10, $"{highData} data pages in the high slot, the fill put ~{fillEnd - LowPages} there");
        Assert.True(highDirty >= highData);
        TestContext.Current.SendDiagnosticMessage($"high slot: {highData} data pages, {highDirty} dirty pages, fill ends at page {fillEnd}");
    }

    [Fact]
    public void PatternPagesInBothSlotsAreLoggedExactlyAtTheirLinearIndices()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        long[] low = [2000, 9000, LowPages - 1], high = [LowPages, LowPages + 1, LowPages + 63, LowPages + 64, 20000, Total / 4096 - 1];
        long[] pages = [.. low, .. high];
        using var m = Machine.Boot(kvm, TwoSlots(Workload.Pattern) with { FillBytes = 0, PatternPages = pages });
        var source = new KvmDirtyPageSource(m.Vm, m.Slots, m.VmmWrites);
        var dirty = new DirtyBitmap(source.PageCount);
        source.Harvest(dirty);
        dirty.Clear();
        m.Start();
        MachineTests.WaitFor(m, () => m.Telemetry.ProgressTotal >= pages.Length && m.Telemetry.HeartbeatCount >= 5, "the pattern writes and 5 heartbeats");
        m.Pause();
        source.Harvest(dirty);
        Assert.Equal(0, m.Telemetry.SelfCheckErrors);

        long heapFirst = (long)MachineTests.HeapStart(m.Memory) / 4096;
        var logged = new List<long>();
        foreach (long p in dirty) if (p >= heapFirst) logged.Add(p);
        Assert.Equal(pages, logged); // the runtime's own pages (boot info, stack, .bss) lie below the heap
        foreach (long p in pages) Assert.NotEqual(0, m.Memory.Page(p)[0]);
        // the page behind linear index LowPages is the first page at 4 GiB: written through the slot at that GPA
        Assert.Equal(0x1_0000_0000UL, m.Memory.GuestPhysicalAddressOf(LowPages));
        Assert.NotEqual(0, m.Memory.Regions[1].Memory.Page(0)[0]);
    }

    [Fact]
    public void SaveAndRestoreOfATwoSlotGuestContinuesWithoutErrors()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var source = Machine.Boot(kvm, TwoSlots(Workload.Text));
        source.Start();
        MachineTests.WaitFor(source, () => source.Telemetry.Ready && source.Telemetry.HeartbeatCount >= 5, "the fill and 5 heartbeats", 60);
        source.Pause();
        MachineSnapshot snap = MachineSnapshotCodec.Decode(MachineSnapshotCodec.Encode(source.SaveState()));
        Assert.Equal(LowTop, snap.Config.LowMemoryTop);
        Heartbeat last = snap.Devices.Telemetry.LastHeartbeat!.Value;
        GuestMemoryMap copy = MachineTests.CopyOf(source.Memory);
        source.Stop();

        using var dest = Machine.Restore(kvm, snap, copy);
        Assert.Equal(source.Memory.Regions.Select(r => (r.SlotId, r.GuestPhysicalAddress)), dest.Slots.Select(s => (s.Id, s.GuestPhysicalAddress)));
        dest.Start();
        MachineTests.WaitFor(dest, () => dest.Telemetry.HeartbeatCount >= snap.Devices.Telemetry.HeartbeatCount + 10, "10 heartbeats after restore");
        Assert.True(dest.Telemetry.LastHeartbeat!.Value.Seq >= last.Seq + 10);
        Assert.Equal(0, dest.Telemetry.ContinuityErrors);
        Assert.Equal(0, dest.Telemetry.SelfCheckErrors);
        MachineTests.WaitFor(dest, () => dest.Telemetry.ProgressTotal > snap.Devices.Telemetry.ProgressTotal, "the text workload's progress after restore");
        Assert.Equal(0, dest.Telemetry.SelfCheckErrors);
    }

    [Fact]
    public void RestoreRefusesMemoryInOtherSlotsThanTheSnapshots()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var source = Machine.Boot(kvm, TwoSlots(Workload.Idle) with { FillBytes = 0 });
        MachineSnapshot snap = source.SaveState();
        using var oneSlot = RamLayout.Allocate([new RamSlot(0, 0, Total)]);
        var e = Assert.Throws<ArgumentException>(() => Machine.Restore(kvm, snap, oneSlot));
        Assert.Contains("slot 1 [0x100000000", e.Message);
    }
}
