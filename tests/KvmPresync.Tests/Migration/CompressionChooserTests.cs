using KvmPresync.Migration.Compression;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>The per-batch codec choice as a pure policy: raw is the baseline, a codec wins only on measured expected time.</summary>
public sealed class CompressionChooserTests
{
    private const long Batch = 1 << 20; // 256 pages
    private const double Gbit = 1e9 / 8, TenGbit = 1e10 / 8;

    /// <summary>Feeds the chooser what a codec with <paramref name="ratio"/> and <paramref name="mbPerSecond"/> would measure, whenever it asks to try one.</summary>
    private static PageCodec[] Run(CompressionChooser c, int batches, double lz4Ratio, double lz4MBps, double zstdRatio, double zstdMBps)
    {
        var chosen = new PageCodec[batches];
        for (int i = 0; i < batches; i++)
        {
            PageCodec codec = chosen[i] = c.Choose(Batch);
            if (codec == PageCodec.Lz4) c.Compressed(codec, Batch, (long)(Batch * lz4Ratio), Batch / (lz4MBps * 1e6));
            if (codec == PageCodec.Zstd) c.Compressed(codec, Batch, (long)(Batch * zstdRatio), Batch / (zstdMBps * 1e6));
        }
        return chosen;
    }

    [Fact]
    public void Compressible_pages_on_a_1_Gbit_link_go_compressed_with_the_faster_overall_codec()
    {
        var c = new CompressionChooser(CompressionMode.Auto, Gbit);
        PageCodec[] chosen = Run(c, 200, lz4Ratio: 0.40, lz4MBps: 600, zstdRatio: 0.28, zstdMBps: 250);
        // compressing overlaps sending: lz4 max(1/600, 0.40/125) = 3.2 ms/MB; zstd max(1/250, 0.28/125) = 4 ms; raw 8 ms
        Assert.Equal(PageCodec.Lz4, c.Best(Batch));
        Assert.True(chosen.Skip(2).Count(x => x == PageCodec.Lz4) > 190);
        Assert.True(c.ExpectedSeconds(PageCodec.Lz4, Batch) < c.ExpectedSeconds(PageCodec.None, Batch));
    }

    [Fact]
    public void A_codec_too_slow_beside_the_running_guest_wins_at_once_when_the_paused_guest_frees_the_CPU()
    {
        var c = new CompressionChooser(CompressionMode.Auto, Gbit);
        Run(c, 40, lz4Ratio: 0.65, lz4MBps: 600, zstdRatio: 0.45, zstdMBps: 150);
        // lz4 max(1/600, 0.65/125) = 5.2 ms/MB; zstd max(1/150, 0.45/125) = 6.7 ms: lz4 beside the running guest
        Assert.Equal(PageCodec.Lz4, c.Best(Batch));
        // with twice the CPU zstd takes max(3.3, 3.6) = 3.6 ms: it would win; asking does not change the choice
        Assert.Equal(PageCodec.Zstd, c.Best(Batch, cpuScale: 2));
        Assert.Equal(Batch * 0.45 / Gbit, c.ExpectedSeconds(PageCodec.Zstd, Batch, cpuScale: 2)!.Value, 6); // the link, not the CPU, bounds it now
        Assert.Equal(PageCodec.Lz4, c.Best(Batch));
        // a factor of 1 (or less) changes nothing; one that is not a factor is refused
        c.CpuFreed(1);
        c.CpuFreed(0.5);
        Assert.Equal(PageCodec.Lz4, c.Best(Batch));
        Assert.Throws<ArgumentOutOfRangeException>(() => c.CpuFreed(double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Best(Batch, cpuScale: 0));
        // the guest pauses: the very next batches go zstd, and stay there as they measure zstd's paused speed
        c.CpuFreed(2);
        Assert.Equal(PageCodec.Zstd, c.Best(Batch));
        PageCodec[] paused = Run(c, 20, lz4Ratio: 0.65, lz4MBps: 1200, zstdRatio: 0.45, zstdMBps: 300);
        Assert.Equal(PageCodec.Zstd, paused[0]);
        Assert.True(paused.Count(x => x == PageCodec.Zstd) >= 18, string.Join(",", paused));
    }

    [Fact]
    public void A_high_ratio_codec_wins_when_the_link_is_slow()
    {
        var c = new CompressionChooser(CompressionMode.Auto, 100e6 / 8);
        Run(c, 50, lz4Ratio: 0.40, lz4MBps: 600, zstdRatio: 0.25, zstdMBps: 250);
        Assert.Equal(PageCodec.Zstd, c.Best(Batch)); // max(1/250, 0.25/12.5) = 20 ms < lz4 max(1/600, 0.4/12.5) = 32 ms
    }

    [Fact]
    public void On_a_10_Gbit_link_the_CPU_is_the_bottleneck_and_batches_go_raw_with_backed_off_probes()
    {
        var c = new CompressionChooser(CompressionMode.Auto, TenGbit);
        PageCodec[] chosen = Run(c, 1000, lz4Ratio: 0.40, lz4MBps: 600, zstdRatio: 0.28, zstdMBps: 250);
        Assert.Equal(PageCodec.None, c.Best(Batch)); // raw 0.8 ms < lz4 max(1.7, 0.3) ms: compressing is slower than the link
        int compressed = chosen.Count(x => x != PageCodec.None);
        Assert.InRange(compressed, 2, 1000 / CompressionChooser.MaxProbeInterval + 8); // probes back off to 1 in 64
    }

    [Fact]
    public void Incompressible_pages_go_raw_on_any_link()
    {
        foreach (double link in new[] { 10e6 / 8, Gbit, TenGbit })
        {
            var c = new CompressionChooser(CompressionMode.Auto, link);
            PageCodec[] chosen = Run(c, 500, lz4Ratio: 1.0, lz4MBps: 3000, zstdRatio: 1.0, zstdMBps: 900);
            Assert.Equal(PageCodec.None, c.Best(Batch));
            Assert.True(chosen.Count(x => x != PageCodec.None) <= 500 / CompressionChooser.MaxProbeInterval + 8);
        }
    }

    [Fact]
    public void A_CPU_that_slows_down_turns_compression_off_and_a_recovered_one_back_on()
    {
        var c = new CompressionChooser(CompressionMode.Auto, Gbit);
        Run(c, 50, 0.40, 600, 0.28, 250);
        Assert.Equal(PageCodec.Lz4, c.Best(Batch));
        Run(c, 50, 0.40, 60, 0.28, 25); // the host got loaded: 1/60 = 16.7 ms per MB alone
        Assert.Equal(PageCodec.None, c.Best(Batch));
        Run(c, 800, 0.40, 600, 0.28, 250); // probes (at most 1 in 64 batches) notice the recovery
        Assert.Equal(PageCodec.Lz4, c.Best(Batch));
    }

    [Fact]
    public void Without_a_configured_rate_the_first_batch_goes_raw_to_measure_the_link()
    {
        var c = new CompressionChooser(CompressionMode.Auto, null);
        Assert.Equal(PageCodec.None, c.Choose(Batch));
        Assert.Null(c.LinkBytesPerSecond);
        c.Sent(Batch, Batch / Gbit);
        Assert.Equal(Gbit, c.LinkBytesPerSecond!.Value, 1e-6);
        Assert.Equal(PageCodec.Lz4, c.Choose(Batch)); // then each codec is measured once
        c.Compressed(PageCodec.Lz4, Batch, Batch / 2, 0.002);
        Assert.Equal(PageCodec.Zstd, c.Choose(Batch));
    }

    [Fact]
    public void Fixed_modes_and_off_do_not_adapt()
    {
        Assert.All(Run(new CompressionChooser(CompressionMode.Off, Gbit), 20, 0.1, 5000, 0.1, 5000), x => Assert.Equal(PageCodec.None, x));
        Assert.All(Run(new CompressionChooser(CompressionMode.Lz4, TenGbit), 20, 1, 10, 1, 10), x => Assert.Equal(PageCodec.Lz4, x));
        Assert.All(Run(new CompressionChooser(CompressionMode.Zstd, TenGbit), 20, 1, 10, 1, 10), x => Assert.Equal(PageCodec.Zstd, x));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CompressionChooser(CompressionMode.Auto, 0));
    }

    [Fact]
    public void The_expected_speedup_is_raw_time_over_the_chosen_codecs_time_and_1_when_nothing_pays()
    {
        using var compressor = new BatchCompressor(CompressionMode.Auto, Gbit);
        Assert.Equal(1, compressor.ExpectedSpeedup(Batch)); // nothing measured yet
        compressor.Chooser.Seed(PageCodec.Lz4, 0.25, 600e6);
        compressor.Chooser.Seed(PageCodec.Zstd, 0.18, 250e6);
        // lz4: max(1/600, 0.25/125) = 2 ms per MB against raw's 8 ms; zstd: max(4 ms, 1.44 ms) = 4 ms
        Assert.Equal(PageCodec.Lz4, compressor.Chooser.Best(Batch));
        Assert.Equal(4.0, compressor.ExpectedSpeedup(Batch), 6);

        using var incompressible = new BatchCompressor(CompressionMode.Auto, Gbit);
        incompressible.Chooser.Seed(PageCodec.Lz4, 1.0, 3000e6);
        incompressible.Chooser.Seed(PageCodec.Zstd, 1.0, 900e6);
        Assert.Equal(1, incompressible.ExpectedSpeedup(Batch));

        using var off = new BatchCompressor(CompressionMode.Off, Gbit);
        off.Chooser.Seed(PageCodec.Lz4, 0.25, 600e6);
        Assert.Equal(1, off.ExpectedSpeedup(Batch));
    }

    [Fact]
    public void Tiny_batches_whose_fixed_cost_dwarfs_their_bytes_do_not_turn_compression_off()
    {
        var c = new CompressionChooser(CompressionMode.Auto, Gbit);
        Run(c, 20, lz4Ratio: 0.25, lz4MBps: 600, zstdRatio: 0.18, zstdMBps: 250);
        Assert.Equal(PageCodec.Lz4, c.Best(Batch));
        // a sync round of 2 pages each: 8 KiB compressed in 0.2 ms, i.e. 40 MB/s — its fixed cost, not the codec's speed
        for (int i = 0; i < 50; i++) c.Compressed(PageCodec.Lz4, 8192, 2048, 0.0002, probe: false);
        Assert.Equal(PageCodec.Lz4, c.Best(Batch));
        Assert.True(c.BytesPerSecond(PageCodec.Lz4) > 150e6); // per-batch averaging would have fallen to the tiny batches' 40 MB/s
    }
}
