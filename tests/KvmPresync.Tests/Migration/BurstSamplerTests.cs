using KvmPresync.Core;
using KvmPresync.Memory;
using KvmPresync.Migration;
using KvmPresync.Tests.Kvm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Migration;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// The burst clock on real guests (real /dev/kvm): the sampler looks at the KVM dirty log every millisecond while the test
/// harvests it every 100 ms, as sync rounds do, and must find each paced workload's period (docs/WORKLOADS.md). Run alone:
/// with other KVM tests on the 2 cores the guest's vCPU waits for a CPU past its deadlines and its bursts lose their beat
/// (the clock then rightly offers no forecast; seen once in a parallel run). Where this host's write-protect faults make a
/// burst's writes right after a harvest last longer than its period (<see cref="BurstWrites"/>: the movie on kvm_pvm of
/// 6.18.44-fc-v669), the guest writes without pause and the clock must offer no forecast.
/// </summary>
[Collection(nameof(KvmPresync.Tests.ZeroCopy.ProcessAllocationCollection))]
public sealed class BurstSamplerTests
{
    [Theory]
    [InlineData(Workload.Movie, 40.0)] // a frame every 40 ms
    [InlineData(Workload.Audio, 20.0)] // a period every 20 ms
    public void APacedGuestsBurstsAreTimedAtItsPeriod(Workload workload, double periodMs)
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var machine = MigrationHarness.BootFilled(kvm, new MachineConfig { Workload = workload, MemorySize = 128L << 20, GuestImage = KvmRequirement.GuestImageOrFail() });
        var source = new MachineMigrationSource(machine);
        var (burstPages, burstMs) = BurstWrites.FirstAfterHarvest(source.DirtyLog);
        TestContext.Current.SendDiagnosticMessage($"{workload}: a burst right after a harvest wrote {burstPages} pages in {burstMs:0.0} ms");
        bool bursty = burstMs < periodMs; // else this host's write faults run the bursts together: nothing to time
        var harvest = new DirtyBitmap(source.DirtyLog.PageCount);
        using BurstSampler sampler = BurstSampler.Start(source.DirtyLog) ?? throw new InvalidOperationException("the KVM dirty log can be looked at");
        Engine.BurstForecast? forecast = null;
        for (int i = 0; i < 60 && forecast is null; i++) // up to 6 s
        {
            Thread.Sleep(100);
            harvest.Clear();
            source.DirtyLog.Harvest(harvest);
            if (i >= 20) forecast = sampler.Forecast();
        }
        if (!bursty)
        {
            // a clock that offered a period here would time writes that are not periodic: it must offer none
            Assert.Null(forecast);
            return;
        }
        Engine.BurstForecast f = forecast ?? throw new Xunit.Sdk.XunitException($"no forecast for {workload} within 6 s");
        // the last look (what a readiness estimate counts as dirtied since the harvest) comes after the last harvest
        harvest.Clear();
        DirtyHarvest last = source.DirtyLog.Harvest(harvest);
        Thread.Sleep(20);
        DirtyPeek look = sampler.LastLook() ?? throw new Xunit.Sdk.XunitException("the sampler has looked");
        Assert.True(look.Time > last.Time, $"last look at {look.Time}, last harvest at {last.Time}");
        Assert.InRange(f.Period.TotalMilliseconds, periodMs * 0.97, periodMs * 1.03);
        Assert.InRange(f.Length.TotalMilliseconds, 0.5, periodMs);
        Assert.True(f.Pages >= 64, $"{f.Pages} pages per burst");
    }

    [Fact]
    public void ALookCountsWhatTheGuestDirtiedSinceTheHarvestOnlyWhenItComesAfterIt()
    {
        static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);
        var look = new DirtyPeek(Ms(150), 300);
        Assert.Equal(300 * 4096.0, SenderRun.DirtiedSince(look, Ms(100), Ms(100), null, 4096));
        // a working-set probe at 120 took 200 pages into its side bitmap and cleared the log: the look counts what came after
        Assert.Equal(500 * 4096.0, SenderRun.DirtiedSince(look, Ms(100), Ms(100), new SenderRun.ProbeTaken(Ms(120), 200), 4096));
        Assert.Null(SenderRun.DirtiedSince(look, Ms(100), Ms(100), new SenderRun.ProbeTaken(Ms(160), 200), 4096)); // a look before the probe
        Assert.Null(SenderRun.DirtiedSince(look, Ms(100), Ms(140), null, 4096));  // a harvest at 140 since the estimate's at 100
        Assert.Null(SenderRun.DirtiedSince(look, Ms(200), Ms(200), null, 4096));  // a look older than the harvest
        Assert.Null(SenderRun.DirtiedSince(null, Ms(100), Ms(100), null, 4096));  // no look (no sampler)
    }

    [Fact]
    public void ASourceThatCannotBeLookedAtHasNoSampler()
    {
        Assert.Null(BurstSampler.Start(new NoPeek()));
    }

    private sealed class NoPeek : IDirtyPageSource
    {
        public long PageCount => 64;
        public int PageSize => 4096;
        public DirtyHarvest Harvest(DirtyBitmap into) => new(TimeSpan.Zero, 0);
    }

    [Fact]
    public void ALaunchDuringASyncRoundsSendCountsWhatTheRoundSentAsNoLongerPending()
    {
        // 30,000 pages pending at the round's harvest; 20 MB on the wire since, at a compression speed-up of 3: 60 MB of
        // pages (14,648 pages of 4,096 bytes) have left
        Assert.Equal(30_000L * 4096 - 60_000_000, SenderRun.PendingDuringSend(30_000L * 4096, 20_000_000, 3));
        Assert.Equal(0, SenderRun.PendingDuringSend(1_000_000, 2_000_000, 1));        // never below nothing
        Assert.Equal(1_000_000, SenderRun.PendingDuringSend(1_000_000, 0, 3));        // nothing sent yet
        Assert.Equal(500_000, SenderRun.PendingDuringSend(1_000_000, 500_000, 0.5));  // a speed-up below 1 is raw
    }
}
