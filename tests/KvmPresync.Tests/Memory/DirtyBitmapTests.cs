using KvmPresync.Memory;

namespace KvmPresync.Tests.Memory;

/// <summary><see cref="DirtyBitmap.NextRun"/>: maximal runs across word boundaries, up to a partial last word, and the end.</summary>
public sealed class DirtyBitmapTests
{
    [Theory]
    [InlineData(130)]
    [InlineData(128)]
    public void NextRunWalksMaximalRunsAcrossWords(long pageCount)
    {
        var bitmap = new DirtyBitmap(pageCount);
        long[] set = [0, 1, 2, 62, 63, 64, 65, 100, pageCount - 2, pageCount - 1];
        foreach (long p in set) bitmap.Set(p);

        var runs = new List<(long First, long End)>();
        for (long p = 0; (p = bitmap.NextRun(p, out long end)) < pageCount; p = end) runs.Add((p, end));

        Assert.Equal([(0, 3), (62, 66), (100, 101), (pageCount - 2, pageCount)], runs);
    }

    [Fact]
    public void NextRunFromPastTheLastSetPageOrTheEndFindsNone()
    {
        var bitmap = new DirtyBitmap(70);
        bitmap.Set(5);
        Assert.Equal(5, bitmap.NextRun(5, out long end));
        Assert.Equal(6, end);
        Assert.Equal(70, bitmap.NextRun(6, out end));
        Assert.Equal(70, end);
        Assert.Equal(70, bitmap.NextRun(70, out end));
        Assert.Equal(0, new DirtyBitmap(0).NextRun(0, out end));
        Assert.Equal(0, end);
    }

    [Fact]
    public void CountAndNot_counts_the_pages_set_here_and_not_there()
    {
        var a = new DirtyBitmap(200);
        var b = new DirtyBitmap(200);
        foreach (long p in new long[] { 1, 63, 64, 130, 199 }) a.Set(p);
        foreach (long p in new long[] { 63, 130, 150 }) b.Set(p);
        Assert.Equal(3, a.CountAndNot(b));
        Assert.Equal(1, b.CountAndNot(a));
        Assert.Throws<ArgumentException>(() => a.CountAndNot(new DirtyBitmap(100)));
    }
}
