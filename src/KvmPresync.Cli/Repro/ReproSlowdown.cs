using System.Text.Json;
using System.Text.Json.Nodes;
using KvmPresync.Migration;

namespace KvmPresync.Cli.Repro;

/// <summary>
/// repro's in-run guest-slowdown figure: each run's <see cref="MigrationResult.GuestSlowdown"/> — the guest's work rate
/// over its sync period against the same guest's rate over the baseline window just before presync (<c>run
/// --baseline-seconds</c>, nothing sent). In <c>precopy</c> runs nothing is sent before launch either, so their figure is
/// the measurement's null test. (The table's "vs precopy" column is the other comparison: the first 5 s of sync against
/// the same 5 s of the same seed's precopy run.)
/// </summary>
internal static class ReproSlowdown
{
    /// <summary>The in-run slowdown of each run that has one, %.</summary>
    public static IEnumerable<double> Percents(IEnumerable<ReproModeRun> runs) =>
        runs.Where(r => r.Result.Succeeded).Select(r => r.Result.GuestSlowdown?.Percent).OfType<double>();

    /// <summary>A run's figure for the JSON: percent, counting uncertainty, and both windows (rates, vCPU figures).</summary>
    public static JsonNode? RunJson(ReproModeRun r) =>
        r.Result.GuestSlowdown is { } s ? new JsonObject
        {
            ["percent"] = s.Percent,
            ["countingUncertaintyPercent"] = s.CountingUncertaintyPercent,
            ["baseline"] = Window(s.Baseline),
            ["presync"] = Window(s.Presync),
        } : null;

    private static JsonNode? Window(GuestWindow w) => JsonSerializer.SerializeToNode(w, Commands.PresyncRun.JsonOptions);
}
