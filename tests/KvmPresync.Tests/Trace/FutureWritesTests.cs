using KvmPresync.Trace;

namespace KvmPresync.Tests.Trace;

public sealed class FutureWritesTests
{
    [Fact]
    public void Next_and_first_write_rounds_follow_the_script()
    {
        var script = ScriptedSource.Schedule(10, (1, [0, 3, 7]), (2, [5]), (70, [9]));
        var f = FutureWrites.Record(() => new ScriptedSource(128, script), ScriptedSource.Round);
        Assert.Equal(10, f.Rounds);
        Assert.Equal(3, f.WrittenPages);
        Assert.Equal(5, f.Writes);
        Assert.Equal(0b110UL, f.WrittenWord(0));
        Assert.Equal(1UL << 6, f.WrittenWord(1));
        Assert.Equal(3, f.NextWriteRound(1, 0));
        Assert.Equal(3, f.NextWriteRound(1, 2));
        Assert.Equal(7, f.NextWriteRound(1, 3));
        Assert.Equal(-1, f.NextWriteRound(1, 7));
        Assert.Equal(0, f.FirstWriteRound(1));
        Assert.Equal(5, f.NextWriteRound(2, 0));
        Assert.Equal(9, f.NextWriteRound(70, 0));
        Assert.Equal(-1, f.NextWriteRound(0, 0));
        Assert.Equal(-1, f.FirstWriteRound(0));
    }

    [Fact]
    public void Writes_after_the_horizon_are_unknown()
    {
        var script = ScriptedSource.Schedule(10, (1, [0, 3, 7]));
        var f = FutureWrites.Record(() => new ScriptedSource(64, script), ScriptedSource.Round, until: TimeSpan.FromMilliseconds(500));
        Assert.Equal(6, f.Rounds); // t = 0 … 500 ms
        Assert.Equal(3, f.NextWriteRound(1, 0));
        Assert.Equal(-1, f.NextWriteRound(1, 3));
    }

    [Fact]
    public void More_than_65536_rounds_are_counted_exactly()
    {
        List<long[]> script = Enumerable.Range(0, 70_001).Select(k => k is 0 or 70_000 ? new long[] { 3 } : []).ToList();
        var f = FutureWrites.Record(() => new ScriptedSource(64, script), ScriptedSource.Round);
        Assert.Equal(70_001, f.Rounds);
        Assert.Equal(70_000, f.NextWriteRound(3, 0));
    }

    [Fact]
    public void A_source_that_replays_differently_is_refused()
    {
        int opened = 0;
        var first = ScriptedSource.Schedule(4, (1, [0, 2]));
        var second = ScriptedSource.Schedule(4, (1, [0, 2]), (2, [1]));
        var e = Assert.Throws<InvalidOperationException>(() =>
            FutureWrites.Record(() => new ScriptedSource(64, opened++ == 0 ? first : second), ScriptedSource.Round));
        Assert.Contains("deterministic", e.Message);
    }

    [Fact]
    public void A_million_pages_over_600_rounds_cost_two_bytes_per_write()
    {
        // 1 Mi pages, 10,000 distinct pages written every round for 600 rounds (60 s at 100 ms)
        var spec = new SyntheticWorkloadSpec
        {
            PageCount = 1 << 20,
            Interval = TimeSpan.FromMilliseconds(100),
            Duration = TimeSpan.FromSeconds(60),
            Behaviours = [new HotSetBehaviour(0, 10_000)],
        };
        var f = FutureWrites.Record(() => new SyntheticWorkload(spec), TimeSpan.FromMilliseconds(100));
        long writes = f.Writes;
        Assert.Equal(10_000L * 600, writes);
        long expected = (1 << 20) / 64 * 12 + (10_000 + 1) * 8 + writes * 2;
        Assert.Equal(expected, f.MemoryBytes); // ≈ 12.2 MB
    }
}
