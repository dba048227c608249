using KvmPresync.Engine;
using KvmPresync.Migration;
using System.Globalization;
using ScottPlot;

namespace KvmPresync.Cli.Repro;

/// <summary>
/// Draws the repro harness's figures as PNGs (ScottPlot over SkiaSharp):
/// per workload, bytes sent / send window / held pages per round against time (run 1 of each mode),
/// and one grouped bar chart of the median launch-to-resume time per workload and mode on a log10 axis.
/// </summary>
public static class ReproPlots
{
    public const int Width = 1000;
    public const int Height = 600;

    private const double MiB = 1 << 20;

    /// <summary>Modes in the order the paper compares them; any other mode follows in first-seen order.</summary>
    private static readonly string[] KnownModes = ["precopy", "slowstart", "predict+slowstart"];

    /// <summary>Creates <paramref name="directory"/>, writes every figure into it and returns the files written.</summary>
    public static IReadOnlyList<string> Write(string directory, IReadOnlyList<ReproModeRun> all)
    {
        ArgumentNullException.ThrowIfNull(all);
        // the launch-target sweep's runs have a figure of their own (the trade-off curve), not a mode's place in the others
        IReadOnlyList<ReproModeRun> runs = all.Where(r => !ReproLaunchTargets.TryParse(r.Mode, out _)).ToList();
        if (runs.Count == 0)
            throw new ArgumentException("no runs to plot; run at least one workload in one mode first", nameof(runs));
        string font = PickFont();
        Directory.CreateDirectory(directory);

        var written = new List<string>();
        foreach (string workload in Distinct(runs.Select(r => r.Workload)))
        {
            IReadOnlyList<ReproModeRun> firstRuns = FirstRunPerMode(runs.Where(r => r.Workload == workload));
            string stem = FileStem(workload);
            written.Add(Save(PerRound(font, workload, firstRuns, "Bytes sent per round", "sent (MiB)", r => r.SentBytes / MiB, skipZeros: false),
                directory, $"bytes-per-round-{stem}.png"));
            written.Add(Save(PerRound(font, workload, firstRuns, "Send window per round", "window (MiB)", r => r.WindowBytes / MiB, skipZeros: true),
                directory, $"window-per-round-{stem}.png"));
            written.Add(Save(PerRound(font, workload, firstRuns, "Pages held back per round", "held pages (4 KiB pages)", r => r.HeldPages, skipZeros: false),
                directory, $"held-pages-{stem}.png"));
        }
        if (runs.Count > 0) written.Add(Save(LaunchToResume(font, runs), directory, "launch-to-resume.png"));
        foreach (string workload in Distinct(all.Select(r => r.Workload)))
            if (ReproLaunchTargets.Curve(all, workload) is { Count: > 0 } curve)
                written.Add(Save(TradeOff(font, workload, curve), directory, $"trade-off-{FileStem(workload)}.png"));
        return written;
    }

    /// <summary>
    /// The launch-target sweep of one workload: sync traffic before launch against launch-to-resume, one point per target. All
    /// of it, not the steady part: a larger budget holds more of the first pass, which then counts as "steady" when released,
    /// so the steady figure is not comparable across targets.
    /// </summary>
    private static Plot TradeOff(string font, string workload, IReadOnlyList<ReproLaunchTargets.Point> curve)
    {
        var plot = NewPlot(font, $"Sync traffic against launch time - {workload}", "launch to resume (ms, median)", "sync traffic before launch (MiB, median)");
        double[] xs = curve.Select(p => p.LaunchToResumeMs).ToArray(), ys = curve.Select(p => p.SyncBytes / MiB).ToArray();
        var line = plot.Add.Scatter(xs, ys, ModeColor("predict+slowstart"));
        line.LineWidth = 2;
        line.MarkerSize = 8;
        line.LegendText = "predict+slowstart, one point per --launch-target";
        foreach (ReproLaunchTargets.Point p in curve)
        {
            var label = plot.Add.Text($"target {p.TargetMs:0.#} ms", p.LaunchToResumeMs, p.SyncBytes / MiB);
            label.LabelFontSize = 13;
            label.LabelOffsetX = 6;
            label.LabelOffsetY = -6;
        }
        plot.Axes.SetLimitsX(0, Math.Max(1, xs.Max()) * 1.15);
        plot.Axes.SetLimitsY(Math.Max(0, ys.Min() - (ys.Max() - ys.Min()) * 0.5 - 1), ys.Max() + (ys.Max() - ys.Min()) * 0.15 + 1);
        plot.ShowLegend(Edge.Bottom);
        return plot;
    }

    private static Plot PerRound(string font, string workload, IReadOnlyList<ReproModeRun> modeRuns, string what, string yLabel,
        Func<RoundRecord, double> value, bool skipZeros)
    {
        var plot = NewPlot(font, $"{what} - {workload}", "time since start (s)", yLabel);
        var series = modeRuns
            .Select(run => (Run: run, Points: run.Result.Rounds
                .Select(r => (X: r.TimeMs / 1000.0, Y: value(r), Launched: r.Phase != RoundPhase.Sync))
                .Where(p => !skipZeros || p.Y != 0)
                .ToArray()))
            .Where(s => s.Points.Length > 0)
            .ToArray();
        if (series.Length == 0)
        {
            Note(plot, skipZeros ? "no mode reported a send window for this workload" : "no rounds were recorded for this workload");
            return plot;
        }

        // Precopy's first round sends all of memory while presync's rounds send a few MiB: past two decades
        // a linear axis flattens the small series to the floor, so switch to log10 (zero rounds cannot be shown there).
        double[] positive = series.SelectMany(s => s.Points).Select(p => p.Y).Where(y => y > 0).ToArray();
        bool log = positive.Length > 0 && positive.Max() / positive.Min() > 100;
        bool droppedZeros = false;
        var launched = new List<(double X, double Y)>();
        foreach (var (run, all) in series)
        {
            var points = log ? all.Where(p => p.Y > 0).ToArray() : all;
            droppedZeros |= points.Length < all.Length;
            if (points.Length == 0) continue;
            double[] ys = points.Select(p => log ? Math.Log10(p.Y) : p.Y).ToArray();
            var line = plot.Add.Scatter(points.Select(p => p.X).ToArray(), ys, ModeColor(run.Mode));
            line.LegendText = $"{run.Mode} (run {run.Run})";
            line.LineWidth = 2;
            line.MarkerSize = points.Length > 200 ? 0 : 5;
            launched.AddRange(points.Select((p, i) => (p.X, Y: ys[i], p.Launched)).Where(p => p.Launched).Select(p => (p.X, p.Y)));
        }
        // Ring the rounds after launch (final and paused) so the switch-over is visible on every mode.
        if (launched.Count > 0)
        {
            var rings = plot.Add.ScatterPoints(launched.Select(p => p.X).ToArray(), launched.Select(p => p.Y).ToArray(), Colors.Black);
            rings.MarkerShape = MarkerShape.OpenCircle;
            rings.MarkerSize = 12;
            rings.MarkerLineWidth = 1.5f;
            rings.LegendText = "after launch (final/paused rounds)";
        }
        if (log)
        {
            plot.YLabel(yLabel + ", log scale" + (droppedZeros ? "; zero rounds not shown" : ""), size: 16);
            plot.Axes.Left.TickGenerator = DecadeTicks(positive.Min(), positive.Max(), FormatNumber);
        }
        else
        {
            // Counts and sizes start at zero; a floating baseline would exaggerate small changes.
            plot.Axes.SetLimitsY(0, Math.Max(1, series.SelectMany(s => s.Points).Max(p => p.Y)) * 1.05);
        }
        // Below the axes, so the legend never hides a series.
        plot.ShowLegend(Edge.Bottom);
        return plot;
    }

    /// <summary>Ticks for a log10 axis: a labelled major tick at each power of ten (in the data's own unit), minor ticks at 2..9 times it.</summary>
    private static ScottPlot.TickGenerators.NumericManual DecadeTicks(double min, double max, Func<double, string> format)
    {
        int low = (int)Math.Floor(Math.Log10(min));
        int high = Math.Max(low + 1, (int)Math.Ceiling(Math.Log10(max)));
        // With few decades on the axis, also label 2x and 5x so a reader has more than two numbers to read against.
        bool fewDecades = high - low <= 3;
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int d = low; d <= high; d++)
        {
            ticks.AddMajor(d, format(Math.Pow(10, d)));
            for (int k = 2; k <= 9 && d < high; k++)
            {
                double at = d + Math.Log10(k);
                if (fewDecades && k is 2 or 5) ticks.AddMajor(at, format(k * Math.Pow(10, d)));
                else ticks.AddMinor(at);
            }
        }
        return ticks;
    }

    private static string FormatNumber(double v) =>
        v >= 1 ? v.ToString("#,0", CultureInfo.InvariantCulture) : v.ToString("0.####", CultureInfo.InvariantCulture);


    private static Plot LaunchToResume(string font, IReadOnlyList<ReproModeRun> runs)
    {
        var plot = NewPlot(font, "Launch to resume (median over successful runs)", "workload", "launch to resume (log scale)");
        string[] workloads = Distinct(runs.Select(r => r.Workload)).ToArray();
        string[] modes = OrderModes(runs.Select(r => r.Mode));
        double barWidth = 0.8 / modes.Length;

        var medians = new List<(int Workload, int Mode, double Ms, int N)>();
        for (int w = 0; w < workloads.Length; w++)
            for (int m = 0; m < modes.Length; m++)
            {
                double[] ms = runs.Where(r => r.Workload == workloads[w] && r.Mode == modes[m] && r.Result.Succeeded && r.Result.LaunchToResumeMs > 0)
                    .Select(r => r.Result.LaunchToResumeMs).ToArray();
                if (ms.Length > 0) medians.Add((w, m, ReproStats.Median(ms), ms.Length));
            }
        if (medians.Count == 0)
        {
            Note(plot, "no run succeeded, so there is no launch-to-resume time to show");
            plot.Axes.Bottom.SetTicks(Enumerable.Range(0, workloads.Length).Select(i => (double)i).ToArray(), workloads);
            return plot;
        }

        // Bars grow from the decade below the smallest median, so a tens-of-ms bar and a seconds bar are both visible.
        int lowDecade = (int)Math.Floor(Math.Log10(medians.Min(x => x.Ms)));
        int highDecade = (int)Math.Ceiling(Math.Log10(medians.Max(x => x.Ms)));
        if (highDecade == lowDecade) highDecade++;
        var bars = medians.Select(x => new Bar
        {
            Position = x.Workload + (x.Mode - (modes.Length - 1) / 2.0) * barWidth,
            Value = Math.Log10(x.Ms),
            ValueBase = lowDecade,
            Size = barWidth * 0.9,
            FillColor = ModeColor(modes[x.Mode]),
            LineColor = ModeColor(modes[x.Mode]),
            Label = $"{FormatMs(x.Ms)}",
        }).ToList();
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 14;
        barPlot.ValueLabelStyle.Bold = true;

        plot.Axes.Left.TickGenerator = DecadeTicks(Math.Pow(10, lowDecade), Math.Pow(10, highDecade), FormatMs);
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, workloads.Length).Select(i => (double)i).ToArray(), workloads);
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        // Headroom above the tallest bar for its value label.
        plot.Axes.SetLimitsY(lowDecade, highDecade + 0.15 * (highDecade - lowDecade));
        plot.Axes.SetLimitsX(-0.6, workloads.Length - 0.4);

        foreach (string mode in modes)
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = mode, FillColor = ModeColor(mode) });
        plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }

    private static Plot NewPlot(string font, string title, string xLabel, string yLabel)
    {
        var plot = new Plot();
        plot.Font.Set(font);
        plot.Title(title, size: 22);
        plot.XLabel(xLabel, size: 16);
        plot.YLabel(yLabel, size: 16);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 14;
        plot.Axes.Left.TickLabelStyle.FontSize = 14;
        plot.Legend.FontSize = 14;
        return plot;
    }

    /// <summary>DejaVu Sans when SkiaSharp can see it (Debian's fonts-dejavu-core), else ScottPlot's sans pick.</summary>
    private static string PickFont()
    {
        string[] families = SkiaSharp.SKFontManager.Default.GetFontFamilies();
        if (families.Length == 0)
            throw new InvalidOperationException(
                "cannot draw the repro plots: SkiaSharp finds no fonts (it reads /usr/share/fonts); install one, e.g. 'apt-get install fonts-dejavu-core'");
        return families.Contains("DejaVu Sans") ? "DejaVu Sans" : Fonts.Sans;
    }

    private static void Note(Plot plot, string text)
    {
        var note = plot.Add.Annotation(text, Alignment.MiddleCenter);
        note.LabelFontSize = 18;
    }

    private static string Save(Plot plot, string directory, string fileName)
    {
        string path = Path.Combine(directory, fileName);
        plot.SavePng(path, Width, Height);
        return path;
    }

    /// <summary>Run 1 of each mode (the lowest-numbered run when run 1 is missing), modes in paper order.</summary>
    private static IReadOnlyList<ReproModeRun> FirstRunPerMode(IEnumerable<ReproModeRun> runs)
    {
        var byMode = runs.GroupBy(r => r.Mode).ToDictionary(g => g.Key, g => g.OrderBy(r => r.Run).First());
        return OrderModes(byMode.Keys).Select(m => byMode[m]).ToArray();
    }

    private static string[] OrderModes(IEnumerable<string> modes)
    {
        string[] seen = Distinct(modes).ToArray();
        return KnownModes.Where(seen.Contains).Concat(seen.Where(m => !KnownModes.Contains(m))).ToArray();
    }

    private static IEnumerable<string> Distinct(IEnumerable<string> names) => names.Distinct(StringComparer.Ordinal);

    /// <summary>Same colour for a mode in every figure: blue precopy, orange slowstart, green predict+slowstart.</summary>
    private static Color ModeColor(string mode) => Array.IndexOf(KnownModes, mode) switch
    {
        0 => Color.FromHex("#1f77b4"),
        1 => Color.FromHex("#ff7f0e"),
        2 => Color.FromHex("#2ca02c"),
        _ => new ScottPlot.Palettes.Category10().GetColor(3 + (int)((uint)StringComparer.Ordinal.GetHashCode(mode) % 7)),
    };

    private static string FormatMs(double ms) => ms switch
    {
        >= 1000 => (ms / 1000).ToString(ms >= 10_000 ? "0" : "0.##", CultureInfo.InvariantCulture) + " s",
        >= 10 => ms.ToString("0", CultureInfo.InvariantCulture) + " ms",
        >= 1 => ms.ToString("0.#", CultureInfo.InvariantCulture) + " ms",
        _ => ms.ToString("0.###", CultureInfo.InvariantCulture) + " ms",
    };

    /// <summary>A workload name as a file-name part: lower case, anything but [a-z0-9] becomes '-'.</summary>
    internal static string FileStem(string workload)
    {
        var chars = workload.ToLowerInvariant().Select(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') ? c : '-').ToArray();
        string stem = new string(chars).Trim('-');
        return stem.Length == 0 ? "workload" : stem;
    }
}
