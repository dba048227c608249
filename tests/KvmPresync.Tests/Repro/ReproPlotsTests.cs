using System.Buffers.Binary;
using KvmPresync.Cli.Repro;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using SkiaSharp;

namespace KvmPresync.Tests.Repro;

public sealed class ReproPlotsTests : IDisposable
{
    private static readonly string[] Workloads = ["text", "audio", "movie"];
    private static readonly string[] Modes = ["precopy", "slowstart", "predict+slowstart"];
    private static readonly byte[] PngMagic = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "kvmpresync-plots-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Writes_three_per_workload_figures_and_the_launch_to_resume_bars()
    {
        IReadOnlyList<string> paths = ReproPlots.Write(_dir, SyntheticRuns());

        var expected = Workloads
            .SelectMany(w => new[] { $"bytes-per-round-{w}.png", $"window-per-round-{w}.png", $"held-pages-{w}.png" })
            .Append("launch-to-resume.png")
            .Select(f => Path.Combine(_dir, f))
            .Order()
            .ToArray();
        Assert.Equal(expected, paths.Order().ToArray());
        foreach (string path in paths)
            Assert.True(File.Exists(path), $"{path} was returned but not written");
    }

    [Fact]
    public void Every_figure_is_a_decodable_1000x600_png()
    {
        foreach (string path in ReproPlots.Write(_dir, SyntheticRuns()))
        {
            byte[] bytes = File.ReadAllBytes(path);
            Assert.True(bytes.Length > 10_000, $"{path} is only {bytes.Length} bytes");
            Assert.Equal(PngMagic, bytes[..8]);
            // IHDR is the first chunk: length(4) "IHDR"(4) width(4, big-endian) height(4).
            Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
            Assert.Equal(ReproPlots.Width, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));
            Assert.Equal(ReproPlots.Height, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));

            using SKBitmap? bitmap = SKBitmap.Decode(bytes);
            Assert.NotNull(bitmap);
            Assert.Equal((ReproPlots.Width, ReproPlots.Height), (bitmap.Width, bitmap.Height));
        }
    }

    [Fact]
    public void Title_text_is_drawn_above_the_data_area()
    {
        ReproPlots.Write(_dir, SyntheticRuns());
        using SKBitmap bitmap = SKBitmap.Decode(Path.Combine(_dir, "launch-to-resume.png"));
        // The title sits in the top band; with no usable font it would be blank (white) there.
        int dark = CountPixels(bitmap, 0, 45, c => c.Red < 80 && c.Green < 80 && c.Blue < 80);
        Assert.True(dark > 300, $"only {dark} dark pixels in the title band: is a font available to SkiaSharp?");
    }

    [Fact]
    public void Launch_to_resume_bars_show_every_mode_even_when_one_is_100x_slower()
    {
        ReproPlots.Write(_dir, SyntheticRuns());
        using SKBitmap bitmap = SKBitmap.Decode(Path.Combine(_dir, "launch-to-resume.png"));
        // Each mode's bars must cover real area (log axis), not a hairline next to precopy's seconds.
        foreach ((string mode, SKColor color) in ModeColors())
        {
            int n = CountPixels(bitmap, 0, bitmap.Height, c => c == color);
            Assert.True(n > 3 * 2_000, $"{mode} bars cover only {n} pixels");
        }
    }

    [Fact]
    public void Window_figure_leaves_out_modes_that_never_had_a_window()
    {
        ReproPlots.Write(_dir, SyntheticRuns());
        using SKBitmap bitmap = SKBitmap.Decode(Path.Combine(_dir, "window-per-round-text.png"));
        var colors = ModeColors().ToDictionary(x => x.Mode, x => x.Color);
        Assert.Equal(0, CountPixels(bitmap, 0, bitmap.Height, c => c == colors["precopy"]));
        Assert.True(CountPixels(bitmap, 0, bitmap.Height, c => c == colors["slowstart"]) > 50);
        Assert.True(CountPixels(bitmap, 0, bitmap.Height, c => c == colors["predict+slowstart"]) > 50);
    }

    [Fact]
    public void Failed_runs_and_missing_rounds_still_give_every_file()
    {
        var runs = new List<ReproModeRun>
        {
            new() { Workload = "text", Mode = "precopy", Run = 1, Result = new MigrationResult { Succeeded = false, Failure = "link down" } },
            new() { Workload = "text", Mode = "slowstart", Run = 2, Result = new MigrationResult { Succeeded = true, LaunchToResumeMs = 31 } },
        };
        IReadOnlyList<string> paths = ReproPlots.Write(_dir, runs);
        Assert.Equal(4, paths.Count);
        Assert.All(paths, p => Assert.True(new FileInfo(p).Length > 0, $"{p} is empty"));
    }

    [Fact]
    public void A_launch_target_sweep_gets_a_trade_off_curve_per_workload_and_stays_out_of_the_mode_figures()
    {
        var runs = SyntheticRuns();
        foreach (var (target, launch, sync) in new[] { (10, 11.0, 300_000_000L), (50, 40.0, 230_000_000L), (100, 75.0, 210_000_000L) })
            runs.Add(new() { Workload = "text", Mode = ReproLaunchTargets.ModeFor(TimeSpan.FromMilliseconds(target)), Run = 1,
                Result = new MigrationResult { Succeeded = true, LaunchToResumeMs = launch, SyncBytes = sync, InitialCopyBytes = 200_000_000 } });
        IReadOnlyList<string> paths = ReproPlots.Write(_dir, runs);
        Assert.Contains(Path.Combine(_dir, "trade-off-text.png"), paths);
        Assert.DoesNotContain(paths, p => p.Contains("trade-off-audio"));
        Assert.Equal(Workloads.Length * 3 + 2, paths.Count); // the sweep adds one figure, no mode of its own
        using SKBitmap bitmap = SKBitmap.Decode(Path.Combine(_dir, "trade-off-text.png"));
        Assert.True(CountPixels(bitmap, 0, bitmap.Height, c => c == SKColor.Parse("#2ca02c")) > 100, "the curve is drawn");
    }

    [Fact]
    public void No_runs_is_refused_with_a_message_saying_what_to_do()
    {
        var e = Assert.Throws<ArgumentException>(() => ReproPlots.Write(_dir, []));
        Assert.Contains("no runs to plot", e.Message);
    }

    [Theory]
    [InlineData("text", "text")]
    [InlineData("Movie 4K", "movie-4k")]
    [InlineData("../audio", "audio")]
    [InlineData("///", "workload")]
    public void Workload_names_become_safe_file_name_parts(string workload, string stem) =>
        Assert.Equal(stem, ReproPlots.FileStem(workload));

    private static IEnumerable<(string Mode, SKColor Color)> ModeColors() =>
    [
        ("precopy", SKColor.Parse("#1f77b4")),
        ("slowstart", SKColor.Parse("#ff7f0e")),
        ("predict+slowstart", SKColor.Parse("#2ca02c")),
    ];

    private static int CountPixels(SKBitmap bitmap, int fromRow, int toRow, Func<SKColor, bool> match)
    {
        int n = 0;
        for (int y = fromRow; y < toRow; y++)
            for (int x = 0; x < bitmap.Width; x++)
                if (match(bitmap.GetPixel(x, y))) n++;
        return n;
    }

    /// <summary>3 workloads x 3 modes x 2 runs, shaped like the paper's: precopy migrates in a few seconds
    /// of shrinking rounds; presync syncs for 20 s with a window and held pages, then resumes in tens of ms.</summary>
    private static List<ReproModeRun> SyntheticRuns()
    {
        var runs = new List<ReproModeRun>();
        for (int w = 0; w < Workloads.Length; w++)
            for (int m = 0; m < Modes.Length; m++)
                for (int run = 1; run <= 2; run++)
                {
                    bool precopy = m == 0;
                    var rounds = new List<RoundRecord>();
                    int count = precopy ? 6 : 40;
                    double t = 0;
                    for (int r = 0; r < count; r++)
                    {
                        t += precopy ? 400 + 100 * r : 500;
                        RoundPhase phase = r == count - 1 ? RoundPhase.Paused : r == count - 2 ? RoundPhase.FinalLive : RoundPhase.Sync;
                        long sent = precopy ? (512L << 20) >> r : (long)((4 + 2 * Math.Sin(r / 3.0 + w) + m) * (1 << 20));
                        rounds.Add(new RoundRecord
                        {
                            Round = r, TimeMs = t, Phase = phase,
                            DirtyPages = sent / 4096, PendingPages = 0, SentPages = sent / 4096, SentBytes = sent,
                            SkippedUnchangedPages = 0, ZeroPages = 0,
                            HeldPages = m == 2 ? 300 + 40 * (r % 5) + 100 * w : m == 1 ? 20 * (r % 3) : 0,
                            WindowBytes = precopy ? 0 : (8L + r % 4 + 2 * m) << 20,
                            IntervalMs = 500,
                            HeldBytes = 0, DeferredPages = 0, RemainingAtLaunchBytes = 0,
                        });
                    }
                    double ms = precopy ? 2400 + 600 * w + 50 * run : 25 + 10 * w - 5 * (m - 1) + run;
                    runs.Add(new ReproModeRun
                    {
                        Workload = Workloads[w], Mode = Modes[m], Run = run,
                        Result = new MigrationResult { Succeeded = true, LaunchToResumeMs = ms, DowntimeMs = ms * 0.8, Rounds = rounds },
                    });
                }
        return runs;
    }
}
