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
}
