using KvmPresync.Tests.Migration;
using System.Diagnostics;
using KvmPresync.Kvm;
using KvmPresync.Memory;
using KvmPresync.Tests.Kvm;
using KvmPresync.Trace;
using KvmPresync.Vmm;

namespace KvmPresync.Tests.Vmm;

/// <summary>The workload guests run at their configured rates on real KVM, and their dirty traces round-trip.</summary>
/// <remarks>Runs alone: on two shared cores, parallel tests would starve the guest and the rate check would measure them.</remarks>
[Collection(nameof(KvmPresync.Tests.ZeroCopy.ProcessAllocationCollection))]
public sealed class WorkloadTests
{
    private static MachineConfig Config(Workload w) => new()
    {
        Workload = w,
        MemorySize = w == Workload.Database ? 256L << 20 : 128L << 20,   // the database's pool is 128 MiB
        GuestImage = KvmRequirement.GuestImageOrFail(),
    };

    [Theory]
    [InlineData(Workload.Audio, 50.0)]  // 20 ms periods (docs/WORKLOADS.md)
    [InlineData(Workload.Movie, 25.0)]  // 25 fps
    [InlineData(Workload.Database, 2200.0)]  // transactions/s
    public void PacedWorkloadHoldsItsRateWithinFivePercent(Workload workload, double unitsPerSecond)
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var m = MigrationHarness.BootFilled(kvm, Config(workload));
        Thread.Sleep(500);
        long p0 = m.Telemetry.ProgressTotal, t0 = m.GuestTimeUs;
        var wall = Stopwatch.StartNew();
        Thread.Sleep(4000);
        long p1 = m.Telemetry.ProgressTotal, t1 = m.GuestTimeUs;
        double rate = (p1 - p0) / ((t1 - t0) / 1e6);
        Assert.InRange(rate, unitsPerSecond * 0.95, unitsPerSecond * 1.05);
        // guest time tracks wall time while running (the guest is not starved)
        Assert.InRange((t1 - t0) / 1e6, wall.Elapsed.TotalSeconds * 0.9, wall.Elapsed.TotalSeconds * 1.1);
        Assert.Equal(0, m.Telemetry.SelfCheckErrors);
    }

    [Theory]
    [InlineData(Workload.Text)]
    [InlineData(Workload.Audio)]
    [InlineData(Workload.Movie)]
    [InlineData(Workload.Database)]
    public void RecordedTraceOfARealGuestReadsBackToTheSameBitmaps(Workload workload)
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var m = MigrationHarness.BootFilled(kvm, Config(workload));
        var source = new KvmDirtyPageSource(m.Vm, m.Slots, m.VmmWrites, () => (ulong)m.Telemetry.ProgressTotal);
        var bitmap = new DirtyBitmap(source.PageCount);
        source.Harvest(bitmap);

        var stream = new MemoryStream();
        var header = new TraceHeader { PageSize = source.PageSize, PageCount = source.PageCount, Interval = TimeSpan.FromMilliseconds(100), Workload = workload.ToString() };
        var recorded = new List<ulong[]>();
        using (var writer = new TraceWriter(stream, header, leaveOpen: true))
        {
            for (int i = 0; i < 15; i++)
            {
                Thread.Sleep(100);
                bitmap.Clear();
                var h = source.Harvest(bitmap);
                Assert.Equal(h.DirtyPages, bitmap.Count());
                writer.WriteInterval(h.Time, bitmap, h.Progress);
                recorded.Add(bitmap.ReadOnlyWords.ToArray());
            }
            writer.Complete();
        }
        Assert.Contains(recorded, r => r.Any(w => w != 0)); // the guest really dirtied pages

        stream.Position = 0;
        using var reader = new TraceReader(stream, "in-memory");
        var back = new DirtyBitmap(source.PageCount);
        int n = 0;
        while (reader.TryReadInterval(back, out TraceInterval iv)) // ORs into the bitmap: cleared after each compare
        {
            Assert.Equal(recorded[n], back.ReadOnlyWords.ToArray());
            Assert.Equal(back.Count(), iv.DirtyPages);
            back.Clear();
            n++;
        }
        Assert.Equal(recorded.Count, n);
    }
}
