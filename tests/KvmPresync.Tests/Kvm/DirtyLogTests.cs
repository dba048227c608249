using KvmPresync.Core;
using KvmPresync.Kvm;
using KvmPresync.Memory;

namespace KvmPresync.Tests.Kvm;

/// <summary>The KVM dirty log reports exactly the pages a real guest wrote (real /dev/kvm).</summary>
public sealed class DirtyLogTests
{
    private static readonly long[] PhaseA = [700, 701, 1000, 1023, 1024, 4095];
    private static readonly long[] PhaseB = [701, 2000, 3000, 3001, 3063, 3064];

    [Fact]
    public void GuestWritingKnownPagesYieldsExactlyThoseDirtyPages()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var g = RawGuest.Create(kvm, 16L << 20, PhaseA, PhaseB, []);
        Assert.Empty(g.DirtyPages()); // nothing runs before the first KVM_RUN
        g.Settle();

        g.RunPhase();
        Assert.Equal(PhaseA, g.DirtyPages());
        foreach (long p in PhaseA) Assert.Equal(0x5A, g.Memory.Page(p)[0]);
    }

    [Fact]
    public void AfterHarvestAndClearWithNoWritesTheLogIsEmpty()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var g = RawGuest.Create(kvm, 16L << 20, PhaseA, PhaseB, []);
        g.Settle();
        g.RunPhase();
        g.Clear(g.DirtyPages());
        Assert.Empty(g.DirtyPages());

        g.RunPhase(); // phase B writes a new set, including one page of phase A again
        Assert.Equal(PhaseB, g.DirtyPages());
        g.Clear(g.DirtyPages());

        g.RunPhase(); // the empty phase writes nothing
        Assert.Empty(g.DirtyPages());
    }

    [Fact]
    public void ManualClearOfOneChunkLeavesTheOtherChunksDirty()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var g = RawGuest.Create(kvm, 16L << 20, PhaseA, []);
        g.Settle();
        g.RunPhase();
        // pages 1000, 1023 share chunk 15 (pages 960..1023); clear only that chunk.
        g.Clear([1000, 1023]);
        Assert.Equal(new long[] { 700, 701, 1024, 4095 }, g.DirtyPages());
        // a mask bit for a page that is not dirty is harmless, and partial masks clear only their bits
        g.Clear([700]);
        Assert.Equal(new long[] { 701, 1024, 4095 }, g.DirtyPages());
    }

    [Fact]
    public void WriteAfterClearIsLoggedAgain()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var g = RawGuest.Create(kvm, 16L << 20, [10], [10], [10]);
        g.Settle();
        g.RunPhase();
        Assert.Equal([10L], g.DirtyPages());
        g.RunPhase(); // written again, not yet cleared: still reported once
        Assert.Equal([10L], g.DirtyPages());
        g.Clear([10]);
        g.RunPhase();
        Assert.Equal([10L], g.DirtyPages());
    }

    [Fact]
    public void DirtyPageSourceHarvestsBothSlotsAtLinearIndicesAndClearsThem()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        const long low = 4096; // 16 MiB slot 0 at GPA 0; slot 1 (8 MiB) at 4 GiB follows at linear index 4096
        long[] phaseA = [5, low - 1, low, low + 1, low + 2047], phaseB = [low, low + 100];
        using var g = RawGuest.Create(kvm, 16L << 20, 8L << 20, phaseA, phaseB);
        g.Settle();
        var source = new KvmDirtyPageSource(g.Vm, g.Slots);
        Assert.Equal(low + 2048, source.PageCount);
        var bitmap = new DirtyBitmap(source.PageCount);
        source.Harvest(bitmap);
        bitmap.Clear();

        g.RunPhase();
        DirtyHarvest h = source.Harvest(bitmap);
        Assert.Equal(phaseA, Pages(bitmap));
        Assert.Equal(phaseA.Length, h.DirtyPages);
        foreach (long p in phaseA[2..]) Assert.Equal(0x5A, g.Slots[1].Memory.Page(p - low)[0]); // written at GPA 4 GiB + …
        bitmap.Clear();
        source.Harvest(bitmap);
        Assert.Empty(Pages(bitmap)); // both slots' logs were cleared

        g.RunPhase();
        source.Harvest(bitmap);
        Assert.Equal(phaseB, Pages(bitmap)); // a high page written again is logged again
    }

    [Fact]
    public void APeekCountsWhatWasWrittenSinceTheHarvestAndClearsNothing()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var g = RawGuest.Create(kvm, 16L << 20, PhaseA, PhaseB, []);
        g.Settle();
        var source = new KvmDirtyPageSource(g.Vm, g.Slots);
        var bitmap = new DirtyBitmap(source.PageCount);
        source.Harvest(bitmap);
        bitmap.Clear();
        Assert.Equal(0, source.Peek().DirtyPages);

        g.RunPhase();
        DirtyPeek first = source.Peek(), second = source.Peek();
        Assert.Equal(PhaseA.Length, first.DirtyPages);
        Assert.Equal(PhaseA.Length, second.DirtyPages); // the first look cleared nothing
        Assert.True(second.Time >= first.Time);
        DirtyHarvest h = source.Harvest(bitmap);
        Assert.Equal(PhaseA, Pages(bitmap)); // nor did either look lose a page for the harvest
        Assert.True(h.Time >= second.Time); // one clock for looks and harvests
        Assert.Equal(0, source.Peek().DirtyPages);
    }

    [Fact]
    public void SlotsWhosePagesDoNotStartOnA64PageWordAreMergedAtTheRightBits()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        // slot 1 has 2051 pages (8 MiB + 12 KiB) and is numbered first, so slot 0's page p is linear 2051 + p:
        // its log words straddle two words of the linear bitmap (shift 3)
        const long low = 4096, highPages = 2051;
        long[] writes = [0, 60, 61, 62, 127, low - 1, low, low + 2050];
        using var g = RawGuest.Create(kvm, 16L << 20, highPages * 4096, writes);
        g.Settle();
        var source = new KvmDirtyPageSource(g.Vm, [g.Slots[1], g.Slots[0]]);
        var bitmap = new DirtyBitmap(source.PageCount);
        source.Harvest(bitmap);
        bitmap.Clear();
        g.RunPhase();
        source.Harvest(bitmap);
        long[] expected = writes.Select(p => p < low ? highPages + p : p - low).Order().ToArray();
        Assert.Equal(expected, Pages(bitmap));
    }

    private static long[] Pages(DirtyBitmap bitmap)
    {
        var list = new List<long>();
        foreach (long p in bitmap) list.Add(p);
        return [.. list];
    }
}
