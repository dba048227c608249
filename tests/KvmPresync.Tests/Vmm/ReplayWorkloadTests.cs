using KvmPresync.Cli.Replay;
using KvmPresync.Kvm;
using KvmPresync.Memory;
using KvmPresync.Tests.Kvm;
using KvmPresync.Trace;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Replay;

namespace KvmPresync.Tests.Vmm;

/// <summary>
/// The replay guest writes exactly the pages a trace says, interval by interval, inside a real KVM guest: the dirty log
/// harvested at each interval boundary (in the "next batch" exit, so boundaries line up exactly) equals the trace's set
/// within the replay region, and outside it holds only the guest's known overhead pages.
/// </summary>
[Collection(nameof(KvmPresync.Tests.ZeroCopy.ProcessAllocationCollection))]
public sealed class ReplayWorkloadTests : IDisposable
{
    private const int PageCount = 24_000;   // 94 MiB replay region
    private const int Intervals = 300;
    private const int LargeInterval = 150;  // every other page: 12,000 pages in 12,000 runs, more than one mailbox holds
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(10);

    private readonly string _dir = Directory.CreateTempSubdirectory("kp-replay-test").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The scripted page sets: empty intervals, small scattered ones, runs, the edges, one large interval.</summary>
    private static List<long[]> Script()
    {
        var rng = new Random(1234);
        var sets = new List<long[]>();
        for (int i = 0; i < Intervals; i++)
        {
            var pages = new SortedSet<long>();
            if (i == LargeInterval)
                for (long p = 0; p < PageCount; p += 2) pages.Add(p);
            else if (i % 7 != 3)
            {
                int n = rng.Next(1, 60);
                for (int k = 0; k < n; k++) pages.Add(rng.Next(PageCount));
                long run = rng.Next(PageCount - 300);
                for (int k = 0; k < rng.Next(0, 300); k++) pages.Add(run + k);
                if (i % 11 == 0) { pages.Add(0); pages.Add(PageCount - 1); }
            }
            sets.Add([.. pages]);
        }
        return sets;
    }

    private string WriteTrace(List<long[]> sets, int pageCount = PageCount)
    {
        string path = Path.Combine(_dir, "scripted.kpt");
        var header = new TraceHeader { PageSize = 4096, PageCount = pageCount, Interval = Step, Workload = "scripted" };
        using var writer = TraceWriter.Create(path, header);
        var bitmap = new DirtyBitmap(pageCount);
        for (int i = 0; i < sets.Count; i++)
        {
            bitmap.Clear();
            foreach (long p in sets[i]) bitmap.Set(p);
            writer.WriteInterval(Step * (i + 1), bitmap, (ulong)i);
        }
        writer.Complete();
        return path;
    }

    /// <summary>
    /// Wraps the trace feed: each time the guest asks for a batch it has written every earlier one, so a harvest now holds
    /// exactly the writes of the previous batch (and the guest's overhead); it is credited to that batch's interval.
    /// </summary>
    private sealed class HarvestingFeed(TraceReplayFeed inner, Func<DirtyBitmap> harvest) : IReplayFeed, IDisposable
    {
        private long _lastInterval = -1;
        public Dictionary<long, DirtyBitmap> PerInterval { get; } = [];
        public long PageCount => inner.PageCount;

        public ReplayBatch? Next(Span<ReplayRun> runs)
        {
            DirtyBitmap dirty = harvest();
            if (_lastInterval >= 0)
            {
                if (!PerInterval.TryGetValue(_lastInterval, out DirtyBitmap? acc)) PerInterval[_lastInterval] = acc = new DirtyBitmap(dirty.PageCount);
                acc.Or(dirty);
            }
            ReplayBatch? b = inner.Next(runs);
            if (b is { } batch) _lastInterval = batch.Interval;
            return b;
        }

        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public void ReplayGuestDirtiesExactlyTheTracePagesEachInterval()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        List<long[]> sets = Script();
        string path = WriteTrace(sets);
        KvmDirtyPageSource? source = null;
        var feed = new HarvestingFeed(TraceReplayFeed.Open(path, loop: false), () =>
        {
            var b = new DirtyBitmap(source!.PageCount);
            source.Harvest(b);
            return b;
        });
        var config = new MachineConfig
        {
            Workload = Workload.Replay,
            MemorySize = 128L << 20,
            HeartbeatMs = 600_000, // no heartbeat during the test: its sample reads could be logged by kvm_pvm's shadow MMU
            GuestImage = KvmRequirement.GuestImageOrFail(),
            ReplayFeed = feed,
        };
        using var m = Machine.Boot(kvm, config);
        source = new KvmDirtyPageSource(m.Vm, m.Slots, m.VmmWrites, () => (ulong)m.Telemetry.ProgressTotal);
        (long first, long pages) = m.ReplayRegion!.Value;
        Assert.Equal(PageCount, pages);
        m.Start();
        MachineTests.WaitFor(m, () => m.ReplayStats.Ended, "the end of the trace", seconds: 60);

        long tablePages = ReplayLayout.TablePages(PageCount);
        bool Overhead(long p) =>
            // measured: 8, 159, 160..175, the 24 table pages; heartbeats are off, so kvm_pvm logs no sampled (read) page
            p == (long)(GuestAbi.BootInfoGpa / 4096)                                                         // pace/progress mailbox
            || (p >= (long)(GuestAbi.PageTableEndGpa / 4096) && p < (long)(GuestAbi.StackTopGpa / 4096))    // stack (the guest's state)
            || (p >= (long)(GuestAbi.ReplayMailboxGpa / 4096) && p < (long)(GuestAbi.ReplayMailboxGpa / 4096) + GuestAbi.ReplayMailboxPages)
            || (p >= first - tablePages && p < first);                                                      // version table
        var outside = new SortedSet<long>();
        for (int i = 0; i < Intervals; i++)
        {
            DirtyBitmap? got = feed.PerInterval.GetValueOrDefault(i);
            var inRegion = new List<long>();
            if (got is not null)
                foreach (long p in got)
                {
                    if (p >= first && p < first + pages) inRegion.Add(p - first);
                    else outside.Add(p);
                }
            Assert.True(sets[i].SequenceEqual(inRegion),
                $"interval {i}: the trace has {sets[i].Length} pages, the guest dirtied {inRegion.Count} of the replay region; " +
                $"missing {string.Join(",", sets[i].Except(inRegion).Take(10))} extra {string.Join(",", inRegion.Except(sets[i]).Take(10))}");
        }
        Assert.True(outside.All(Overhead), $"pages outside the replay region that are not known overhead: {string.Join(", ", outside.Where(p => !Overhead(p)).Take(20))}");
        ReplayStats stats = m.ReplayStats;
        Assert.Equal(Intervals, stats.Intervals);
        Assert.Equal(sets.Sum(s => (long)s.Length), stats.Pages);
        Assert.True(stats.Batches > Intervals, $"the large interval needs more than one batch: {stats.Batches} batches for {Intervals} intervals");
        Assert.Equal(sets.Count * (long)(sets.Count - 1) / 2, m.Telemetry.ProgressTotal); // interval i recorded progress i
        Assert.False(m.Completion.IsCompleted, $"the guest stopped; console: {m.Telemetry.Console}");
        TestContext.Current.SendDiagnosticMessage($"overhead pages seen outside the replay region: {string.Join(", ", outside)}; " +
            $"late intervals {stats.LateIntervals}, max {stats.MaxLateUs} us");
    }

    [Fact]
    public void TraceLargerThanGuestMemoryIsRefusedNamingBothSizesAndTheFlag()
    {
        string path = WriteTrace([[1, 2, 3]], pageCount: 1 << 16); // a 256 MiB guest's trace
        var config = new MachineConfig { MemorySize = 64L << 20, GuestImage = KvmRequirement.GuestImageOrFail() };
        var e = Assert.Throws<ArgumentException>(() => TraceWorkload.Configure(config, path, memory: 64L << 20));
        Assert.Contains("256.0 MiB", e.Message);
        Assert.Contains("64.0 MiB", e.Message);
        Assert.Contains("--memory", e.Message);

        MachineConfig sized = TraceWorkload.Configure(config, path, memory: null);
        using (sized.ReplayFeed as IDisposable)
        {
            Assert.Equal(Workload.Replay, sized.Workload);
            Assert.True(sized.MemorySize >= (1L << 28) && sized.MemorySize % (2 << 20) == 0, $"sized from the trace: {sized.MemorySize}");
        }
    }

    [Fact]
    public void MachineRefusesAReplayRegionPastItsMemory()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        string path = WriteTrace([[1]], pageCount: 1 << 16);
        using var feed = TraceReplayFeed.Open(path);
        var config = new MachineConfig { Workload = Workload.Replay, MemorySize = 64L << 20, GuestImage = KvmRequirement.GuestImageOrFail(), ReplayFeed = feed };
        var e = Assert.Throws<ArgumentException>(() => Machine.Boot(kvm, config));
        Assert.Contains("65536 pages", e.Message);
        Assert.Contains($"the guest has {64L << 20}", e.Message);
    }
}
