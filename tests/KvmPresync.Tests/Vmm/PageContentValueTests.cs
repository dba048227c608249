using KvmPresync.Vmm;

namespace KvmPresync.Tests.Vmm;

/// <summary><see cref="PageContent"/>: parsing, the workloads' defaults (the corpus ratios) and what a config boots with.</summary>
public sealed class PageContentValueTests
{
    [Theory]
    [InlineData("random", 1000u)]
    [InlineData(" RANDOM ", 1000u)]
    [InlineData("1", 1000u)]
    [InlineData("1.0", 1000u)]
    [InlineData("0.25", 250u)]
    [InlineData("0.161", 161u)]
    [InlineData("0.0001", 1u)]
    public void ParsesRandomOrAnLz4Ratio(string text, uint permille)
    {
        PageContent c = PageContent.Parse(text);
        Assert.Equal(permille, c.Lz4Permille);
        Assert.Equal(permille == 1000, c.IsRandom);
        Assert.Equal(c, PageContent.Parse(c.ToString())); // ToString reads back
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1.5")]
    [InlineData("-0.2")]
    [InlineData("NaN")]
    [InlineData("auto")]
    [InlineData("lz4")]
    public void RefusesAnythingElseSayingWhatIsAccepted(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => PageContent.Parse(text));
        Assert.Contains("'random'", e.Message);
        Assert.Contains("at most 1", e.Message);
    }

    [Theory]
    [InlineData(Workload.Text, 161u)]      // vim (bench/corpus/pages/text-vim.pages)
    [InlineData(Workload.Audio, 336u)]     // mpv playing audio
    [InlineData(Workload.Movie, 248u)]     // mpv playing 720p video
    [InlineData(Workload.Database, 151u)]  // PostgreSQL under pgbench
    [InlineData(Workload.Idle, 1000u)]
    [InlineData(Workload.Pattern, 1000u)]
    [InlineData(Workload.Replay, 1000u)]   // unless the trace's application is known
    public void EachWorkloadDefaultsToItsProgramsCorpusRatio(Workload workload, uint permille)
    {
        Assert.Equal(permille, PageContent.DefaultFor(workload).Lz4Permille);
        var config = new MachineConfig { Workload = workload };
        Assert.Null(config.PageContent);
        Assert.Equal(permille, config.EffectivePageContent.Lz4Permille);
        Assert.True((config with { PageContent = PageContent.Random }).EffectivePageContent.IsRandom);
    }

    [Theory]
    [InlineData("text", 161u)]
    [InlineData("audio", 336u)]
    [InlineData("video", 248u)]
    [InlineData("movie", 248u)]
    [InlineData("database", 151u)]
    [InlineData("cache", 698u)]          // memcached
    [InlineData("my-trace", 1000u)]
    [InlineData(null, 1000u)]
    public void AReplayedTraceDefaultsToItsApplicationsRatioWhereKnown(string? name, uint permille) =>
        Assert.Equal(permille, PageContent.DefaultForApplication(name).Lz4Permille);

    [Fact]
    public void BootValuesOutsideOneToAThousandAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PageContent.FromPermille(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => PageContent.FromPermille(1001));
        Assert.Same(PageContent.Random, PageContent.FromPermille(1000));
        Assert.Equal(248u, PageContent.FromPermille(248).Lz4Permille);
    }
}
