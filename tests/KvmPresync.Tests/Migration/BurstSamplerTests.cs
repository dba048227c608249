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
/// (the clock then rightly offers no forecast; seen once in a parallel run).
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
        Engine.BurstForecast f = forecast ?? throw new Xunit.Sdk.XunitException($"no forecast for {workload} within 6 s");
        Assert.InRange(f.Period.TotalMilliseconds, periodMs * 0.97, periodMs * 1.03);
        Assert.InRange(f.Length.TotalMilliseconds, 0.5, periodMs);
        Assert.True(f.Pages >= 64, $"{f.Pages} pages per burst");
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
}
