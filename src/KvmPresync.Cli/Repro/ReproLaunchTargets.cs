using System.Globalization;
using System.Text.Json.Nodes;

namespace KvmPresync.Cli.Repro;

/// <summary>
/// repro's launch-target sweep (<c>--launch-targets 10ms,25ms,…</c>): per workload, extra predict+slowstart runs, one per
/// target, each a mode of its own (<c>predict+slowstart@50ms</c>) so the main table keeps its three modes. Reported as the
/// trade-off between sync traffic and launch-to-resume (a table, JSON and a plot per workload).
/// </summary>
internal static class ReproLaunchTargets
{
    public const string SweptPolicy = "predict+slowstart";

    /// <summary>The mode name of a sweep run at <paramref name="target"/>.</summary>
    public static string ModeFor(TimeSpan target) => $"{SweptPolicy}@{Ms(target)}ms";

    /// <summary>A sweep mode's target; false for the ordinary modes.</summary>
    public static bool TryParse(string mode, out TimeSpan target)
    {
        target = default;
        string prefix = SweptPolicy + "@";
        if (!mode.StartsWith(prefix, StringComparison.Ordinal) || !mode.EndsWith("ms", StringComparison.Ordinal)) return false;
        if (!double.TryParse(mode[prefix.Length..^2], NumberStyles.Float, CultureInfo.InvariantCulture, out double ms)) return false;
        target = TimeSpan.FromMilliseconds(ms);
        return true;
    }

    /// <summary>Parses <c>--launch-targets</c>: a comma list of positive durations, each once.</summary>
    public static IReadOnlyList<TimeSpan> ParseList(string text)
    {
        var targets = new List<TimeSpan>();
        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            TimeSpan t = Commands.MigrationOptions.ParseLaunchTarget(part);
            if (targets.Contains(t)) throw new ArgumentException($"--launch-targets: {part} is given twice");
            targets.Add(t);
        }
        if (targets.Count == 0) throw new ArgumentException("--launch-targets: give at least one duration, e.g. 10ms,25ms,50ms,100ms,200ms");
        return targets;
    }

    /// <summary>One point of a workload's trade-off curve: the medians of its runs at one target.</summary>
    public sealed record Point(double TargetMs, int Runs, double LaunchToResumeMs, double DowntimeMs, double SyncBytes, double SteadyBytes, double LaunchBytes);

    /// <summary>The trade-off curve of <paramref name="workload"/>, by target; empty without sweep runs.</summary>
    public static IReadOnlyList<Point> Curve(IEnumerable<ReproModeRun> runs, string workload) =>
        runs.Where(r => r.Workload == workload && r.Result.Succeeded && TryParse(r.Mode, out _))
            .GroupBy(r => { TryParse(r.Mode, out TimeSpan t); return t.TotalMilliseconds; })
            .OrderBy(g => g.Key)
            .Select(g => new Point(g.Key, g.Count(),
                Median(g.Select(r => r.Result.LaunchToResumeMs)), Median(g.Select(r => r.Result.DowntimeMs)),
                Median(g.Select(r => (double)r.Result.SyncBytes)),
                Median(g.Select(r => (double)(r.Result.SyncBytes - (r.Result.InitialCopyBytes ?? 0)))),
                Median(g.Select(r => (double)r.Result.LaunchBytes))))
            .ToList();

    public static void WriteTable(TextWriter o, IReadOnlyList<ReproModeRun> runs, IEnumerable<string> workloads)
    {
        if (!runs.Any(r => TryParse(r.Mode, out _))) return;
        o.WriteLine();
        o.WriteLine($"launch-target sweep ({SweptPolicy}): sync traffic against launch-to-resume, medians per target");
        o.WriteLine($"{"workload",-18} {"target ms",10} {"runs",5} {"launch→resume ms",17} {"downtime ms",12} {"sync MiB",10} {"steady MiB",11} {"after launch MiB",17}");
        foreach (string w in workloads)
            foreach (Point p in Curve(runs, w))
                o.WriteLine($"{w,-18} {p.TargetMs,10:0.#} {p.Runs,5} {p.LaunchToResumeMs,17:0.0} {p.DowntimeMs,12:0.0} {p.SyncBytes / 1048576,10:0.0} {p.SteadyBytes / 1048576,11:0.00} {p.LaunchBytes / 1048576,17:0.00}");
    }

    public static JsonArray ToJson(IReadOnlyList<ReproModeRun> runs, string workload) =>
        new(Curve(runs, workload).Select(p => (JsonNode)new JsonObject
        {
            ["launchTargetMs"] = p.TargetMs,
            ["runs"] = p.Runs,
            ["launchToResumeMs"] = p.LaunchToResumeMs,
            ["downtimeMs"] = p.DowntimeMs,
            ["syncBytes"] = p.SyncBytes,
            ["steadySyncBytes"] = p.SteadyBytes,
            ["launchBytes"] = p.LaunchBytes,
        }).ToArray());

    private static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture);

    internal static double Median(IEnumerable<double> values)
    {
        double[] v = values.OrderBy(x => x).ToArray();
        if (v.Length == 0) return double.NaN;
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }
}
