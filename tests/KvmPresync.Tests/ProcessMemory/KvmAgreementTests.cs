using System.Diagnostics;
using KvmPresync.Kvm;
using KvmPresync.Memory;
using KvmPresync.ProcessMemory;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.Vmm;
using KvmPresync.Vmm;

namespace KvmPresync.Tests.ProcessMemory;

/// <summary>
/// The process-memory source against KVM's own dirty log, on one of our own VMM's guests: this test process is the VMM,
/// so it registers the guest's memfd mappings with a userfaultfd of its own (write-protect, async) and harvests them with
/// PAGEMAP_SCAN on /proc/self/pagemap. Each interval the guest is paused and both sources are harvested; they must agree
/// page for page (KvmDirtyPageSource merges the VMM's own writes, which the host-side tracker sees directly). This also
/// shows that host-PTE write protection reaches KVM guest writes (MMU notifiers).
/// </summary>
[Collection(nameof(KvmPresync.Tests.ZeroCopy.ProcessAllocationCollection))]
public sealed class KvmAgreementTests
{
    [Theory]
    [InlineData(Workload.Movie)]
    [InlineData(Workload.Text)]
    public void TrackerAndKvmDirtyLogAgreePageForPage(Workload workload)
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        ProcessTrackingRequirement.SkipUnlessAvailable();
        using var m = Machine.Boot(kvm, new MachineConfig
        {
            Workload = workload,
            MemorySize = 256L << 20,
            GuestImage = KvmRequirement.GuestImageOrFail(),
        });
        using var uffd = UserfaultfdHandle.Open();
        var regions = new List<ProcessMemoryRegion>();
        foreach (GuestRegion r in m.Memory.Regions)
        {
            uffd.RegisterWriteProtect(r.Memory.Address, r.Memory.Size);
            regions.Add(new ProcessMemoryRegion((ulong)r.Memory.Address, (ulong)r.Memory.Address + (ulong)r.Memory.Size, r.ToString()));
        }
        using var tracked = new ProcessDirtyPageSource(0, regions);
        var log = new KvmDirtyPageSource(m.Vm, m.Slots, m.VmmWrites);
        Assert.Equal(log.PageCount, tracked.PageCount);

        m.Start();
        MachineTests.WaitFor(m, () => m.Telemetry.Ready, "the initial fill");
        Thread.Sleep(300);
        var fromLog = new DirtyBitmap(log.PageCount);
        var fromTracker = new DirtyBitmap(tracked.PageCount);
        m.Pause();
        log.Harvest(fromLog);          // baseline: boot, fill, everything so far
        tracked.Harvest(fromTracker);
        m.Resume();

        const int intervals = 12;
        long logTotal = 0, trackerTotal = 0, onlyLogTotal = 0, onlyTrackerTotal = 0;
        var scanMs = new List<double>();
        var report = new List<string>();
        for (int i = 0; i < intervals; i++)
        {
            Thread.Sleep(100);
            m.Pause();
            fromLog.Clear();
            fromTracker.Clear();
            log.Harvest(fromLog);
            var sw = Stopwatch.StartNew();
            tracked.Harvest(fromTracker);
            scanMs.Add(sw.Elapsed.TotalMilliseconds);
            m.Resume();

            long onlyLog = Difference(fromLog, fromTracker), onlyTracker = Difference(fromTracker, fromLog);
            logTotal += fromLog.Count();
            trackerTotal += fromTracker.Count();
            onlyLogTotal += onlyLog;
            onlyTrackerTotal += onlyTracker;
            report.Add($"{fromLog.Count()}/{fromTracker.Count()} (only log {onlyLog}, only tracker {onlyTracker})");
        }
        Assert.Equal(0, m.Telemetry.SelfCheckErrors);
        string summary = $"{workload}, 256 MiB, {intervals} x 100 ms: KVM log / tracker pages per interval: {string.Join("; ", report)}; " +
                         $"totals {logTotal} / {trackerTotal}, only-log {onlyLogTotal}, only-tracker {onlyTrackerTotal}; " +
                         $"PAGEMAP_SCAN harvest of 256 MiB: median {scanMs.Order().ElementAt(scanMs.Count / 2):F2} ms, max {scanMs.Max():F2} ms";
        TestContext.Current.SendDiagnosticMessage(summary);
        Console.WriteLine(summary);

        Assert.True(trackerTotal > 0, "the guest dirtied nothing the tracker saw: " + summary);
        // Page for page: every page the tracker reports, KVM logged too, and the other way round.
        Assert.True(onlyTrackerTotal == 0 && onlyLogTotal == 0, summary);
    }

    /// <summary>Pages set in <paramref name="a"/> and not in <paramref name="b"/>.</summary>
    private static long Difference(DirtyBitmap a, DirtyBitmap b)
    {
        long n = 0;
        ReadOnlySpan<ulong> x = a.ReadOnlyWords, y = b.ReadOnlyWords;
        for (int i = 0; i < x.Length; i++) n += System.Numerics.BitOperations.PopCount(x[i] & ~y[i]);
        return n;
    }
}
