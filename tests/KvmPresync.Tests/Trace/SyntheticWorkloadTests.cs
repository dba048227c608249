using KvmPresync.Memory;
using KvmPresync.Trace;

namespace KvmPresync.Tests.Trace;

public sealed class SyntheticWorkloadTests
{
    private static readonly TimeSpan I = TimeSpan.FromMilliseconds(50);

    private static SyntheticWorkloadSpec Spec(params SyntheticBehaviour[] behaviours) => new()
    {
        PageCount = 1000,
        Interval = I,
        Duration = TimeSpan.FromSeconds(1),
        Behaviours = behaviours,
    };

    private static List<DirtyBitmap> Intervals(IReplayDirtyPageSource w)
    {
        var result = new List<DirtyBitmap>();
        for (int k = 1; !w.Exhausted; k++)
        {
            w.AdvanceTo(I * k);
            var b = new DirtyBitmap(w.PageCount);
            w.Harvest(b);
            result.Add(b);
        }
        return result;
    }

    [Fact]
    public void Periodic_page_i_is_written_when_interval_plus_i_is_a_multiple_of_the_period()
    {
        var intervals = Intervals(new SyntheticWorkload(Spec(new PeriodicBehaviour(100, 10, 3))));
        Assert.Equal(20, intervals.Count);
        for (int k = 0; k < intervals.Count; k++)
            for (long i = 0; i < 10; i++)
                Assert.Equal((k + i) % 3 == 0, intervals[k][100 + i]);
    }

    [Fact]
    public void Periodic_block_with_a_phase_is_written_whole()
    {
        var intervals = Intervals(new SyntheticWorkload(Spec(new PeriodicBehaviour(100, 10, 4, Phase: 1))));
        for (int k = 0; k < intervals.Count; k++)
            Assert.Equal((k + 1) % 4 == 0 ? 10 : 0, intervals[k].Count());
    }

    [Fact]
    public void Hot_set_is_written_every_interval_and_nothing_else_is()
    {
        foreach (var b in Intervals(new SyntheticWorkload(Spec(new HotSetBehaviour(10, 5)))))
        {
            Assert.Equal(5, b.Count());
            for (long p = 10; p < 15; p++) Assert.True(b[p]);
        }
    }

    [Fact]
    public void Sequential_cursor_streams_and_wraps()
    {
        var intervals = Intervals(new SyntheticWorkload(Spec(new SequentialBehaviour(0, 10, 4))));
        Assert.Equal([0L, 1, 2, 3], Set(intervals[0]));
        Assert.Equal([4L, 5, 6, 7], Set(intervals[1]));
        Assert.Equal([0L, 1, 8, 9], Set(intervals[2]));
    }

    [Fact]
    public void Random_and_bursty_writes_stay_in_their_region_and_are_reproducible()
    {
        var spec = Spec(new RandomSparseBehaviour(500, 100, 7), new BurstyBehaviour(700, 200, 0.05, 4));
        var a = Intervals(new SyntheticWorkload(spec));
        var b = Intervals(new SyntheticWorkload(spec));
        var c = Intervals(new SyntheticWorkload(spec with { Seed = 2 }));
        Assert.Equal(a.Select(Set), b.Select(Set));
        Assert.NotEqual(a.Select(Set), c.Select(Set));
        foreach (var x in a)
            Assert.All(Set(x), p => Assert.True(p is >= 500 and < 600 or >= 700 and < 900, $"page {p} outside the regions"));
        Assert.Contains(a, x => Set(x).Any(p => p >= 700));
    }

    [Fact]
    public void Synthetic_workload_is_identical_across_processes()
    {
        // Pinned output: the per-behaviour seeds once came from HashCode.Combine, which is randomized per process,
        // so the "same" seeded workload differed between runs.
        var w = new SyntheticWorkload(Spec(new RandomSparseBehaviour(0, 1000, 5)) with { Seed = 1 });
        Assert.Equal([341L, 350, 355, 451, 731], Set(Intervals(w)[0]));
    }

    [Fact]
    public void Harvest_after_a_long_advance_merges_every_due_interval()
    {
        var w = new SyntheticWorkload(Spec(new SequentialBehaviour(0, 100, 1)));
        w.AdvanceTo(TimeSpan.FromMilliseconds(149)); // intervals ending at 50 and 100 ms are due, not 150
        var b = new DirtyBitmap(1000);
        var h = w.Harvest(b);
        Assert.Equal([0L, 1], Set(b));
        Assert.Equal(2, h.DirtyPages);
        Assert.Equal(TimeSpan.FromMilliseconds(149), h.Time);
        Assert.Equal(0, w.Harvest(b).DirtyPages); // nothing new until the clock moves
        Assert.Throws<ArgumentOutOfRangeException>(() => w.AdvanceTo(TimeSpan.FromMilliseconds(10)));
    }

    [Fact]
    public void A_region_outside_the_guest_is_rejected()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new SyntheticWorkload(Spec(new HotSetBehaviour(990, 20))));
        Assert.Contains("outside the guest's 1000 pages", ex.Message);
    }

    [Fact]
    public void Recorded_synthetic_trace_replays_identically()
    {
        var spec = SyntheticWorkloadSpec.Mixed(5000, TimeSpan.FromSeconds(2), seed: 5);
        var direct = Intervals(new SyntheticWorkload(spec));
        var stream = new MemoryStream();
        var source = new SyntheticWorkload(spec);
        using (var writer = new TraceWriter(stream, ReplaySources.HeaderFor(source), leaveOpen: true))
            Assert.Equal(40, source.WriteTo(writer));

        using var replay = new TraceReplaySource(new TraceReader(new MemoryStream(stream.ToArray()), "mixed.kpt"));
        Assert.Equal("synthetic-mixed", replay.Workload);
        var replayed = Intervals(replay);
        Assert.Equal(direct.Count, replayed.Count);
        for (int k = 0; k < direct.Count; k++)
            Assert.Equal(direct[k].ReadOnlyWords.ToArray(), replayed[k].ReadOnlyWords.ToArray());
    }

    private static long[] Set(DirtyBitmap b)
    {
        var list = new List<long>();
        foreach (long p in b) list.Add(p);
        return [.. list];
    }
}
