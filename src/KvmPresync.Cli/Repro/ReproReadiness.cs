using System.Text.Json.Nodes;
using KvmPresync.Migration;

namespace KvmPresync.Cli.Repro;

/// <summary>
/// How well the readiness estimate held: per workload, over every run that published one before launch (every mode but
/// pre-copy, sweep runs included), the median and 90th-percentile absolute error of the estimated launch-to-resume and
/// downtime against the actual, and whether the p90 launch-to-resume error is within the target: 10 ms or 10 % of the
/// actual (median), whichever is larger.
/// </summary>
internal static class ReproReadiness
{
    public const double TargetErrorMs = 10, TargetErrorShare = 0.10;

    public sealed record Errors(int Runs, double MedianLaunchErrorMs, double P90LaunchErrorMs, double MedianDowntimeErrorMs, double P90DowntimeErrorMs,
        double MedianActualLaunchMs, double AllowedErrorMs)
    {
        public bool WithinTarget => P90LaunchErrorMs <= AllowedErrorMs;
    }

    public static Errors? Of(IEnumerable<ReproModeRun> runs, string workload)
    {
        ReadinessCheck[] checks = runs.Where(r => r.Workload == workload && r.Result.Succeeded && r.Result.ReadinessAtLaunch is not null)
            .Select(r => r.Result.ReadinessAtLaunch!).ToArray();
        if (checks.Length == 0) return null;
        double actual = ReproLaunchTargets.Median(checks.Select(c => c.LaunchToResumeMs));
        return new Errors(checks.Length,
            Percentile(checks.Select(c => Math.Abs(c.LaunchToResumeErrorMs)), 0.5), Percentile(checks.Select(c => Math.Abs(c.LaunchToResumeErrorMs)), 0.9),
            Percentile(checks.Select(c => Math.Abs(c.DowntimeErrorMs)), 0.5), Percentile(checks.Select(c => Math.Abs(c.DowntimeErrorMs)), 0.9),
            actual, Math.Max(TargetErrorMs, TargetErrorShare * actual));
    }

    public static void WriteTable(TextWriter o, IReadOnlyList<ReproModeRun> runs, IEnumerable<string> workloads)
    {
        var rows = workloads.Select(w => (w, e: Of(runs, w))).Where(x => x.e is not null).ToList();
        if (rows.Count == 0) return;
        o.WriteLine();
        o.WriteLine($"readiness estimate (\"if launched now\", the last one before launch) against the actual switchover; |error| median / p90; " +
                    $"target p90 ≤ max({TargetErrorMs:0} ms, {TargetErrorShare * 100:0} % of launch-to-resume)");
        o.WriteLine($"{"workload",-18} {"runs",5} {"launch→resume |err| ms",24} {"downtime |err| ms",20} {"allowed ms",11} within target");
        foreach (var (w, e) in rows)
            o.WriteLine($"{w,-18} {e!.Runs,5} {$"{e.MedianLaunchErrorMs:0.0} / {e.P90LaunchErrorMs:0.0}",24} {$"{e.MedianDowntimeErrorMs:0.0} / {e.P90DowntimeErrorMs:0.0}",20} {e.AllowedErrorMs,11:0.0} {(e.WithinTarget ? "yes" : "no")}");
    }

    public static JsonObject? ToJson(IReadOnlyList<ReproModeRun> runs, string workload) => Of(runs, workload) is not { } e ? null : new JsonObject
    {
        ["runs"] = e.Runs,
        ["launchToResumeAbsErrorMs"] = new JsonObject { ["median"] = e.MedianLaunchErrorMs, ["p90"] = e.P90LaunchErrorMs },
        ["downtimeAbsErrorMs"] = new JsonObject { ["median"] = e.MedianDowntimeErrorMs, ["p90"] = e.P90DowntimeErrorMs },
        ["allowedErrorMs"] = e.AllowedErrorMs,
        ["withinTarget"] = e.WithinTarget,
    };

    /// <summary>The <paramref name="q"/> quantile by linear interpolation between order statistics.</summary>
    internal static double Percentile(IEnumerable<double> values, double q)
    {
        double[] v = values.OrderBy(x => x).ToArray();
        if (v.Length == 0) return double.NaN;
        double pos = q * (v.Length - 1);
        int lo = (int)Math.Floor(pos), hi = (int)Math.Ceiling(pos);
        return v[lo] + (v[hi] - v[lo]) * (pos - lo);
    }
}
