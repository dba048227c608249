using KvmPresync.Cli.Replay;
using KvmPresync.Memory;
using KvmPresync.Trace;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Replay;

namespace KvmPresync.Tests.Trace;

/// <summary>How a trace becomes replay batches: runs, splitting at the mailbox size, empty intervals, start times, looping.</summary>
public sealed class TraceReplayFeedTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kp-feed-test").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(params long[][] intervals)
    {
        string path = Path.Combine(_dir, "t.kpt");
        var header = new TraceHeader { PageSize = 4096, PageCount = 40_000, Interval = TimeSpan.FromMilliseconds(100), Workload = "" };
        using var w = TraceWriter.Create(path, header);
        var b = new DirtyBitmap(header.PageCount);
        for (int i = 0; i < intervals.Length; i++)
        {
            b.Clear();
            foreach (long p in intervals[i]) b.Set(p);
            w.WriteInterval(TimeSpan.FromMilliseconds(100 * (i + 1)), b, (ulong)(i + 7));
        }
        w.Complete();
        return path;
    }

    [Fact]
    public void IntervalsBecomeRunBatchesDueAtTheirStartSplitAtTheMailboxAndLooping()
    {
        long[] alternate = Enumerable.Range(0, 20_000).Select(i => (long)i * 2).ToArray(); // 20,000 one-page runs
        string path = Write([1, 2, 3, 10, 39_999], [], alternate);
        using var feed = TraceReplayFeed.Open(path, loop: true);
        Assert.Equal("t", feed.Name); // no workload in the header: the file's stem
        var runs = new ReplayRun[GuestAbi.ReplayMaxRuns];

        ReplayBatch b0 = feed.Next(runs)!.Value;
        Assert.Equal(new ReplayBatch(0, TimeSpan.Zero, 3, 5, 7), b0);
        Assert.Equal([new ReplayRun(1, 3), new ReplayRun(10, 1), new ReplayRun(39_999, 1)], runs[..3]);

        Assert.Equal(new ReplayBatch(1, TimeSpan.FromMilliseconds(100), 0, 0, 8), feed.Next(runs));  // empty interval: one empty batch

        var parts = new List<ReplayBatch>();
        long pages = 0;
        while (true)
        {
            ReplayBatch b = feed.Next(runs)!.Value;
            if (b.Interval != 2) { Assert.Equal(new ReplayBatch(3, TimeSpan.FromMilliseconds(300), 3, 5, 7), b); break; } // looped: shifted by 300 ms
            parts.Add(b);
            pages += b.Pages;
        }
        Assert.Equal(20_000, pages);
        Assert.Equal(3, parts.Count); // 8,186 + 8,186 + 3,628 runs
        Assert.All(parts, p => Assert.Equal(TimeSpan.FromMilliseconds(200), p.Start));
        Assert.Equal([9u, 0u, 0u], parts.Select(p => p.Progress));
        Assert.Equal(1, feed.Loops);
    }

    [Fact]
    public void WithoutLoopingTheFeedEnds()
    {
        using var feed = TraceReplayFeed.Open(Write([5]), loop: false);
        var runs = new ReplayRun[16];
        Assert.NotNull(feed.Next(runs));
        Assert.Null(feed.Next(runs));
        Assert.Null(feed.Next(runs));
    }
}
