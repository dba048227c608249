using System.Globalization;
using System.Text.Json.Nodes;
using KvmPresync.Engine;
using KvmPresync.Trace;

namespace KvmPresync.Cli.Repro;

/// <summary>
/// How far each policy is from the future-knowledge bound (docs/POLICIES.md §5) on a repro workload. A live run cannot
/// know the future, so repro records the dirty trace the workload's guest writes (<c>trace record</c>: the same
/// workload, memory and seed, for the sync period) and runs <see cref="PolicyComparison"/> on it at repro's link rate
/// and launch budget: none, slowstart, predict, predict+slowstart and oracle, with reductions against none and
/// fractions of the oracle's. The live reduction is set against the oracle's only where the two are comparable
/// (<see cref="LiveAgainstOracle"/>).
/// </summary>
internal static class ReproOracle
{
    /// <summary>One workload's simulation: the comparison, and where its recorded trace was kept (null: not kept).</summary>
    /// <param name="WarmUpCapped">The warm-up was cut to half the sync period (<see cref="Options(long, double, double, out bool)"/>).</param>
    public sealed record Simulated(PolicyComparisonResult Comparison, string? Trace, bool WarmUpCapped = false);

    /// <summary>The policies simulated: <see cref="PolicyComparison.All"/> plus slowstart, the live reduction's baseline.</summary>
    public static readonly IReadOnlyList<SyncPolicy> Policies =
        [SyncPolicy.None, SyncPolicy.SlowStart, SyncPolicy.Predict, SyncPolicy.PredictSlowStart, SyncPolicy.Oracle];

    /// <summary>Beyond the initial copy's own time, the warm-up waits this long (the first rounds of the predictor's learning).</summary>
    public static readonly TimeSpan WarmUpSlack = TimeSpan.FromSeconds(1);

    /// <summary>The live slowstart's steady period must be at least this long for its rate to be compared.</summary>
    public const double MinLiveSteadySeconds = 1;

    /// <summary>The live and simulated slowstart steady rates must agree within this factor for the live figure to be set against the oracle.</summary>
    public const double ComparableRateFactor = 1.5;

    /// <summary>
    /// The simulation's options: repro's link rate, the live launch budget (link rate × <see cref="LaunchBudget.DefaultTarget"/>),
    /// the live wire header per page, and a warm-up that holds the initial copy: memory × 8 / link rate (every page, at
    /// the link rate), rounded up to a 100 ms round, plus <see cref="WarmUpSlack"/>, at most half the sync period. The
    /// measured period runs from there to the end of the trace.
    /// </summary>
    public static SimulationOptions Options(long memoryBytes, double linkBitsPerSecond, double syncSeconds) =>
        Options(memoryBytes, linkBitsPerSecond, syncSeconds, out _);

    /// <param name="capped">True when the warm-up was cut to half the sync period: the measured period may still hold the initial copy.</param>
    public static SimulationOptions Options(long memoryBytes, double linkBitsPerSecond, double syncSeconds, out bool capped)
    {
        TimeSpan round = TimeSpan.FromMilliseconds(100);
        double copySeconds = memoryBytes * 8.0 / linkBitsPerSecond;
        TimeSpan copy = TimeSpan.FromTicks((long)Math.Ceiling(copySeconds / round.TotalSeconds) * round.Ticks);
        TimeSpan warmUp = copy + WarmUpSlack;
        TimeSpan half = TimeSpan.FromSeconds(syncSeconds / 2);
        capped = warmUp > half;
        if (capped) warmUp = half;
        return new SimulationOptions
        {
            LinkBitsPerSecond = linkBitsPerSecond,
            WarmUp = warmUp,
            Duration = null,
            RoundInterval = round,
            LaunchTarget = LaunchBudget.DefaultTarget,
            HeaderBytesPerPage = Wire.PageDescriptor.WireLength,
        };
    }

    /// <summary>Runs the comparison on the trace at <paramref name="tracePath"/>.</summary>
    /// <param name="keep">Whether the trace is kept (its path is reported).</param>
    public static Simulated Simulate(string tracePath, long memoryBytes, double linkBitsPerSecond, double syncSeconds, bool keep = true)
    {
        SimulationOptions options = Options(memoryBytes, linkBitsPerSecond, syncSeconds, out bool capped);
        return new Simulated(PolicyComparison.Run(() => TraceReplaySource.Open(tracePath), Policies, options, tracePath), keep ? tracePath : null, capped);
    }

    /// <summary>The live steady reduction of predict+slowstart over slowstart, set against the simulated oracle's reduction over slowstart.</summary>
    /// <param name="LivePercent">1 − steady(predict+slowstart) / steady(slowstart), live medians (null when repro has none).</param>
    /// <param name="OraclePercent">1 − sync(oracle) / sync(slowstart), simulated, over the measured period.</param>
    /// <param name="FractionPercent">LivePercent / OraclePercent × 100, only when <see cref="Comparable"/>.</param>
    /// <param name="LiveSlowstartBytesPerSecond">Live slowstart's steady bytes per second of steady sync (median over runs).</param>
    /// <param name="SimulatedSlowstartBytesPerSecond">Simulated slowstart's sync bytes per second of the measured period.</param>
    /// <param name="Why">Why the live figure is not set against the oracle's (null when it is).</param>
    public sealed record LiveAgainstOracle(double? LivePercent, double? OraclePercent, double? FractionPercent,
        double? LiveSlowstartBytesPerSecond, double? SimulatedSlowstartBytesPerSecond, string? Why)
    {
        public bool Comparable => FractionPercent is not null;
    }

    /// <summary>
    /// Comparable only when: the warm-up held the initial copy (not capped); the simulated link is not saturated; the oracle reduces slowstart's bytes (its reduction over
    /// slowstart &gt; 0); repro measured a live reduction; and the live slowstart's steady rate is within
    /// <see cref="ComparableRateFactor"/> of the simulated slowstart's — the simulation then models the live baseline, and
    /// two reductions in percent of the same baseline can be divided although their periods differ in length.
    /// </summary>
    public static LiveAgainstOracle Compare(Simulated simulated, double? livePercent, double? liveSlowstartBytesPerSecond)
    {
        PolicyComparisonResult sim = simulated.Comparison;
        PolicyOutcome? slow = sim.Outcomes.FirstOrDefault(o => o.Policy == SyncPolicy.SlowStart.Name());
        PolicyOutcome? oracle = sim.Outcomes.FirstOrDefault(o => o.Policy == SyncPolicy.Oracle.Name());
        double measured = sim.Saturation.MeasuredSeconds;
        double? simRate = slow is not null && measured > 0 ? slow.SyncBytes / measured : null;
        double? oraclePercent = slow is not null && oracle is not null && slow.SyncBytes > 0 ? 100.0 * (slow.SyncBytes - oracle.SyncBytes) / slow.SyncBytes : null;
        string? why =
            simulated.WarmUpCapped ? "the sync period is too short: the warm-up was cut to half of it, so the measured period may still hold the initial copy"
            : sim.Saturation.Saturated ? "the simulated link is saturated"
            : oraclePercent is not { } o ? "the simulation has no slowstart or oracle bytes"
            : o <= 0 ? "the simulated oracle sends no less than slowstart (slowstart's long rounds coalesce as much)"
            : livePercent is null ? "repro measured no live steady-state reduction"
            : liveSlowstartBytesPerSecond is not { } live || simRate is not { } s || s <= 0 || live <= 0
                ? $"no live slowstart steady period of at least {MinLiveSteadySeconds:0} s to compare rates with"
            : live > s * ComparableRateFactor || live < s / ComparableRateFactor
                ? $"live slowstart steady {Mb(live)} MB/s vs simulated {Mb(s)} MB/s differ by more than {ComparableRateFactor}x: the simulation does not model the live baseline"
            : null;
        return new LiveAgainstOracle(livePercent, oraclePercent, why is null ? livePercent!.Value / oraclePercent!.Value * 100 : null,
            liveSlowstartBytesPerSecond, simRate, why);
    }

    /// <summary>
    /// The block under a workload's rows: what was simulated, the saturation line, a row per policy (MB = 10⁶ B;
    /// "–" where a reduction is not meaningful), then the live figure against the oracle's or why it is not given.
    /// </summary>
    public static void WriteBlock(TextWriter o, string indent, Simulated simulated, LiveAgainstOracle live)
    {
        PolicyComparisonResult sim = simulated.Comparison;
        string? keptTrace = simulated.Trace;
        SimulationResult first = sim.Outcomes[0].Result;
        string trace = keptTrace is null ? "the workload's trace (not kept: give --json or --plots)" : $"the workload's trace {keptTrace}";
        o.WriteLine($"{indent}simulated on {trace}: {Units.FormatBytes(first.PageCount * (double)first.PageSize)}, link {Wire.LinkRate.Format((long)sim.LinkBitsPerSecond)}, " +
                    $"launch budget {first.LaunchBudgetBytes.ToString("N0", CultureInfo.InvariantCulture)} B, warm-up {sim.WarmUpMs / 1000:0.0} s, measured {sim.Saturation.MeasuredSeconds:0.0} s" +
                    (simulated.WarmUpCapped ? " (warm-up cut to half the sync period: the measured period may still hold the initial copy)" : ""));
        Commands.ComparisonTable.WriteRows(o, indent, sim, megabytes: true);
        o.WriteLine(live.Comparable
            ? $"{indent}  live predict+slowstart vs slowstart {live.LivePercent:0.0} % = {live.FractionPercent:0.0} % of the simulated oracle's {live.OraclePercent:0.0} % over slowstart " +
              $"(slowstart steady: live {Mb(live.LiveSlowstartBytesPerSecond!.Value)} MB/s, simulated {Mb(live.SimulatedSlowstartBytesPerSecond!.Value)} MB/s)"
            : $"{indent}  live figure not set against the oracle's: {live.Why}");
    }

    public static JsonObject ToJson(Simulated simulated, LiveAgainstOracle live)
    {
        PolicyComparisonResult sim = simulated.Comparison;
        return new JsonObject
        {
            ["trace"] = simulated.Trace,
            ["warmUpCapped"] = simulated.WarmUpCapped,
            ["pageCount"] = sim.Outcomes[0].Result.PageCount,
            ["linkRateBitsPerSec"] = sim.LinkBitsPerSecond,
            ["launchBudgetBytes"] = sim.Outcomes[0].Result.LaunchBudgetBytes,
            ["warmUpMs"] = sim.WarmUpMs,
            ["measuredSeconds"] = sim.Saturation.MeasuredSeconds,
            ["saturation"] = new JsonObject
            {
                ["saturated"] = sim.Saturation.Saturated,
                ["writesBytesPerSecond"] = sim.Saturation.WritesBytesPerSecond,
                ["linkBytesPerSecond"] = sim.Saturation.LinkBytesPerSecond,
            },
            ["outcomes"] = new JsonArray(sim.Outcomes.Select(p => (JsonNode)new JsonObject
            {
                ["policy"] = p.Policy,
                ["syncBytes"] = p.SyncBytes,
                ["launchBytes"] = p.LaunchBytes,
                ["reductionPercent"] = p.ReductionPercent,
                ["oracleFractionPercent"] = p.OracleFractionPercent,
            }).ToArray()),
            ["live"] = new JsonObject
            {
                ["reductionPercent"] = live.LivePercent,
                ["oracleReductionOverSlowstartPercent"] = live.OraclePercent,
                ["oracleFractionPercent"] = live.FractionPercent,
                ["liveSlowstartSteadyBytesPerSecond"] = live.LiveSlowstartBytesPerSecond,
                ["simulatedSlowstartBytesPerSecond"] = live.SimulatedSlowstartBytesPerSecond,
                ["notComparableBecause"] = live.Why,
            },
        };
    }

    private static string Mb(double bytesPerSecond) => (bytesPerSecond / 1e6).ToString("0.00", CultureInfo.InvariantCulture);
}
