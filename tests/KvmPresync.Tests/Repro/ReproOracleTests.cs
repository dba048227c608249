using System.Text.Json.Nodes;
using KvmPresync.Cli.Repro;
using KvmPresync.Core;
using KvmPresync.Memory;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.Migration;
using KvmPresync.Trace;

namespace KvmPresync.Tests.Repro;

/// <summary>
/// repro's block per workload: the policies and the future-knowledge bound simulated on the workload's recorded trace
/// (<see cref="ReproOracle"/>), the saturation line, and the live figure set against the oracle's only where comparable.
/// </summary>
public sealed class ReproOracleTests : IDisposable
{
    private static readonly string[] FourPolicies = ["none", "predict", "predict+slowstart", "oracle"];
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmpresync-reprooracle").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A trace of <paramref name="pages"/> pages, 100 ms intervals for <paramref name="seconds"/>: a hot set of
    /// <paramref name="hot"/> pages rewritten every interval, and one cold page a round walking the rest.</summary>
    private string WriteTrace(string name, long pages, int hot, double seconds)
    {
        string path = Path.Combine(_dir, name + ".kptrace");
        var header = new TraceHeader { PageSize = 4096, PageCount = pages, Interval = TimeSpan.FromMilliseconds(100), Workload = name };
        using var writer = TraceWriter.Create(path, header);
        var dirty = new DirtyBitmap(pages);
        for (int i = 1; i <= seconds * 10; i++)
        {
            dirty.Clear();
            for (int p = 0; p < hot; p++) dirty.Set(p);
            dirty.Set(hot + i % (pages - hot));
            writer.WriteInterval(TimeSpan.FromMilliseconds(100 * i), dirty);
        }
        writer.Complete();
        return path;
    }

    private static string Table(ReproReport report)
    {
        var o = new StringWriter();
        report.WriteTable(o);
        return o.ToString();
    }

    [Fact]
    public void The_block_lists_the_four_policies_with_their_fraction_of_the_oracle_and_goes_into_the_json()
    {
        string trace = WriteTrace("hot", 4096, hot: 512, seconds: 10);
        var s = new ReproCommand.Settings(["hot"], 16L << 20, "loopback", 1e9, 1, 10, null, null);
        ReproOracle.Simulated sim = ReproOracle.Simulate(trace, s.MemoryBytes, s.LinkBitsPerSecond, s.SyncSeconds);
        Assert.False(sim.WarmUpCapped); // 16 MiB at 1 Gbit/s: 0.2 s of copy + 1 s, within half of 10 s
        Assert.False(sim.Comparison.Saturation.Saturated);
        ReproReport report = ReproReport.Build(s, [], new Dictionary<string, ReproOracle.Simulated> { ["hot"] = sim });

        string table = Table(report);
        Assert.Contains($"simulated on the workload's trace {trace}", table);
        string[] rows = table.Split('\n').Select(l => l.Trim()).ToArray();
        foreach (string policy in FourPolicies)
            Assert.Contains(rows, r => r.StartsWith(policy + " ", StringComparison.Ordinal) && r.EndsWith('%'));
        // the hot set fits the budget: predict holds it, as the oracle does
        string oracleRow = rows.Single(r => r.StartsWith("oracle ", StringComparison.Ordinal));
        Assert.EndsWith("100.0 %", oracleRow);
        Assert.Contains("live figure not set against the oracle's: repro measured no live steady-state reduction", table);

        JsonNode simulated = report.ToJson()["workloads"]!["hot"]!["simulated"]!;
        Assert.Equal(trace, (string)simulated["trace"]!);
        Assert.False((bool)simulated["saturation"]!["saturated"]!);
        var outcomes = simulated["outcomes"]!.AsArray();
        Assert.Equal(["none", "slowstart", "predict", "predict+slowstart", "oracle"], outcomes.Select(x => (string)x!["policy"]!).ToArray());
        Assert.Equal(100.0, (double)outcomes[^1]!["oracleFractionPercent"]!);
        Assert.Null((double?)simulated["live"]!["oracleFractionPercent"]);
    }

    [Fact]
    public void A_saturated_trace_prints_the_saturation_line_and_no_reductions()
    {
        // 2,048 pages every 100 ms = 84 MB/s of writes on a 10 Mbit/s link
        string trace = WriteTrace("saturating", 4096, hot: 2048, seconds: 6);
        var s = new ReproCommand.Settings(["saturating"], 16L << 20, "loopback", 10e6, 1, 6, null, null);
        ReproOracle.Simulated sim = ReproOracle.Simulate(trace, s.MemoryBytes, s.LinkBitsPerSecond, s.SyncSeconds, keep: false);
        ReproReport report = ReproReport.Build(s, [], new Dictionary<string, ReproOracle.Simulated> { ["saturating"] = sim });

        string table = Table(report);
        Assert.Contains("link saturated: writes", table);
        Assert.Contains("— reduction not meaningful", table);
        Assert.Contains("(not kept: give --json or --plots)", table);
        string[] rows = table.Split('\n').Select(l => l.Trim()).ToArray();
        foreach (string policy in FourPolicies)
            Assert.Contains(rows, r => r.StartsWith(policy + " ", StringComparison.Ordinal) && System.Text.RegularExpressions.Regex.IsMatch(r, "–\\s+–$"));
        Assert.Contains("live figure not set against the oracle's:", table);
        JsonNode simulated = report.ToJson()["workloads"]!["saturating"]!["simulated"]!;
        Assert.True((bool)simulated["saturation"]!["saturated"]!);
        Assert.All(simulated["outcomes"]!.AsArray(), o => Assert.Null((double?)o!["reductionPercent"]));
    }

    [Fact]
    public void The_live_figure_is_set_against_the_oracle_only_when_the_baselines_agree()
    {
        string trace = WriteTrace("hot", 4096, hot: 512, seconds: 10);
        ReproOracle.Simulated sim = ReproOracle.Simulate(trace, 16L << 20, 1e9, 10);
        double simRate = sim.Comparison.Outcomes.Single(o => o.Policy == "slowstart").SyncBytes / sim.Comparison.Saturation.MeasuredSeconds;
        ReproOracle.LiveAgainstOracle same = ReproOracle.Compare(sim, livePercent: 40, liveSlowstartBytesPerSecond: simRate * 1.2);
        Assert.True(same.Comparable, same.Why);
        Assert.Equal(40 / same.OraclePercent!.Value * 100, same.FractionPercent!.Value, 6);
        ReproOracle.LiveAgainstOracle apart = ReproOracle.Compare(sim, livePercent: 40, liveSlowstartBytesPerSecond: simRate * 3);
        Assert.False(apart.Comparable);
        Assert.Contains("the simulation does not model the live baseline", apart.Why);
        ReproOracle.Simulated shortSync = ReproOracle.Simulate(trace, 256L << 20, 1e9, 3); // 2.2 s of copy > half of 3 s
        Assert.True(shortSync.WarmUpCapped);
        Assert.Contains("too short", ReproOracle.Compare(shortSync, 40, simRate).Why);
    }

    [Fact]
    public async Task A_short_repro_prints_the_block_for_a_trace_workload_and_a_model_workload_and_keeps_the_traces()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        KvmRequirement.GuestImageOrFail();
        string trace = WriteTrace("small", 2048, hot: 64, seconds: 2);
        string json = Path.Combine(_dir, "out.json");
        using var repro = CliProcess.Start("repro", "--workloads", $"trace:{trace},text", "--memory", "128M", "--runs", "1", "--sync-seconds", "3",
            "--modes", "slowstart,predict+slowstart", "--json", json);
        int exit = await repro.WaitForExitAsync(TimeSpan.FromMinutes(4), TestContext.Current.CancellationToken);
        string output = repro.Output;
        Assert.True(exit == 0, output);
        foreach (string workload in new[] { "small", "text" })
        {
            string kept = Path.Combine(_dir, "out.traces", workload + ".kptrace");
            Assert.True(File.Exists(kept), $"{kept} missing:\n{output}");
            Assert.Contains($"simulated on the workload's trace {kept}", output);
            JsonNode simulated = JsonNode.Parse(File.ReadAllText(json))!["workloads"]![workload]!["simulated"]!;
            Assert.Equal(kept, (string)simulated["trace"]!);
            Assert.Equal(FourPolicies, simulated["outcomes"]!.AsArray().Select(o => (string)o!["policy"]!).Where(p => p != "slowstart").ToArray());
        }
    }
}
