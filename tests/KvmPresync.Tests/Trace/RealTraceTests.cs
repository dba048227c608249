using System.Runtime.CompilerServices;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using KvmPresync.Trace;

namespace KvmPresync.Tests.Trace;

/// <summary>
/// The policies on dirty-page traces recorded from the four model guests on real KVM (256 MiB, 100 ms intervals,
/// 72 s; tests/data/traces, docs/WORKLOADS.md), and held-out workloads the policies were not tuned on.
/// Same run as <c>kvmpresync simulate --trace T --policy P --warmup 10s --duration 60s [--link-rate 10gbit]</c>.
/// </summary>
public sealed class RealTraceTests(ITestOutputHelper output)
{
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Measured = TimeSpan.FromSeconds(60);

    public static TheoryData<string> Traces => new() { "text", "audio", "movie", "database" };

    /// <summary>
    /// The link each trace is judged on, and the reduction predict must reach there. The movie model writes 154 MB/s
    /// (fitted to mpv's 720p playback, which does the same): more than 1 Gbit/s carries, so no policy converges there
    /// and it is judged at 10 Gbit/s. The database (fitted to PostgreSQL under pgbench) rewrites most of its buffer
    /// pool at random over tens of seconds; predict reaches 68 % at 1 Gbit/s on it, as on the real PostgreSQL trace
    /// (67.5 %, oracle 75.5 %), so its floor is 60 %.
    /// </summary>
    private static (double LinkBitsPerSecond, double MinReduction) Judged(string trace) => trace switch
    {
        "movie" => (10e9, 0.70),
        "database" => (1e9, 0.60),
        _ => (1e9, 0.70),
    };

    private static string TracePath(string name, [CallerFilePath] string here = "")
    {
        string path = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", "data", "traces", name + ".kptrace"));
        if (!File.Exists(path))
            throw new FileNotFoundException($"real trace {path} is missing; it is committed under tests/data/traces (git checkout it)", path);
        return path;
    }

    private static SimulationResult Simulate(Func<IReplayDirtyPageSource> open, SyncPolicy policy, HoldBackOptions? holdBack = null, double linkBitsPerSecond = 1e9)
    {
        IReplayDirtyPageSource source = open();
        try
        {
            return Simulator.Run(source, new SimulationOptions
            {
                Policy = policy,
                WarmUp = WarmUp,
                Duration = Measured,
                HoldBack = holdBack ?? new HoldBackOptions(),
                LinkBitsPerSecond = linkBitsPerSecond,
            });
        }
        finally
        {
            (source as IDisposable)?.Dispose();
        }
    }

    private void Print(SimulationResult r, SimulationResult none) =>
        output.WriteLine($"{r.Workload,-16} {r.Policy,-18} sync {r.SyncBytes / 1048576.0,10:F2} MiB  {100.0 * (r.SyncBytes - none.SyncBytes) / none.SyncBytes,7:F1} %  launch {r.LaunchBytes / 1048576.0,6:F2} MiB (budget {r.LaunchBudgetBytes / 1048576.0:F2})");

    [Theory]
    [MemberData(nameof(Traces))]
    public void Predict_and_predict_slowstart_reach_the_traces_reduction_floor_within_the_launch_budget(string trace)
    {
        (double link, double floor) = Judged(trace);
        Func<IReplayDirtyPageSource> open = () => TraceReplaySource.Open(TracePath(trace));
        SimulationResult none = Simulate(open, SyncPolicy.None, linkBitsPerSecond: link);
        Print(none, none);
        Assert.True(none.SyncBytes > 0, "the none baseline sent nothing: the trace is not being replayed");
        foreach (SyncPolicy policy in new[] { SyncPolicy.Predict, SyncPolicy.PredictSlowStart })
        {
            SimulationResult r = Simulate(open, policy, linkBitsPerSecond: link);
            Print(r, none);
            Assert.True(r.SyncBytes <= (1 - floor) * none.SyncBytes,
                $"{trace} {r.Policy} at {link / 1e9:0} Gbit/s: sent {r.SyncBytes} B vs none {none.SyncBytes} B (more than {100 * (1 - floor):0} %)");
            Assert.True(r.LaunchWithinBudget, $"{trace} {r.Policy}: launch {r.LaunchBytes} B > budget {r.LaunchBudgetBytes} B");
            Assert.All(r.Rounds, x => Assert.True(x.HeldBytes <= r.LaunchBudgetBytes, $"round {x.Round} held {x.HeldBytes} B"));
        }
    }

    [Theory]
    [MemberData(nameof(Traces))]
    public void Markov_forecast_of_dirty_next_round_beats_dirty_last_round_on_f1_and_precision(string trace)
    {
        using var source = TraceReplaySource.Open(TracePath(trace));
        PredictionReport report = Simulator.EvaluatePredictor(source, TimeSpan.FromMilliseconds(100));
        output.WriteLine($"{trace}: {report.Rounds} rounds, threshold {report.Threshold}");
        output.WriteLine($"{"model",-18} {"precision",9} {"recall",7} {"F1",6} {"predicted",10}");
        foreach (var (name, c) in new[] { ("markov", report.Markov), ("dirty-last-round", report.DirtyLastRound), ("never-predict", report.NeverPredict) })
            output.WriteLine($"{name,-18} {c.Precision,9:F3} {c.Recall,7:F3} {c.F1,6:F3} {c.Predicted,10}");

        Assert.True(report.Markov.F1 > report.DirtyLastRound.F1, $"{trace}: Markov F1 {report.Markov.F1:F3} ≤ dirty-last-round {report.DirtyLastRound.F1:F3}");
        Assert.True(report.Markov.Precision > report.DirtyLastRound.Precision,
            $"{trace}: Markov precision {report.Markov.Precision:F3} ≤ dirty-last-round {report.DirtyLastRound.Precision:F3}");
        Assert.Equal(0, report.NeverPredict.Predicted);
        Assert.True(report.Markov.F1 > report.NeverPredict.F1);
    }

    /// <summary>An editor-like workload with parameters unlike the recorded text guest: a 2,048-page autosave every 20 s,
    /// a 2,500-page full redraw every 17 s and bursty screen regions — more distinct pages than the launch budget holds.</summary>
    internal static SyntheticWorkload HeldOutEditor() => new(new SyntheticWorkloadSpec
    {
        PageCount = 65_536,
        Interval = TimeSpan.FromMilliseconds(100),
        Duration = TimeSpan.FromSeconds(70),
        Seed = 11,
        Name = "editor-heldout",
        Behaviours =
        [
            new PeriodicBehaviour(10_000, 2048, 200, 37),
            new BurstyBehaviour(20_000, 3000, 0.002, 3),
            new PeriodicBehaviour(30_000, 2500, 170, 90),
            new HotSetBehaviour(40_000, 16, 0.5),
            new RandomSparseBehaviour(0, 65_536, 5),
        ],
    });

    internal static SyntheticWorkload HeldOutMixed() =>
        new(SyntheticWorkloadSpec.Mixed(65_536, TimeSpan.FromSeconds(70), seed: 7, interval: TimeSpan.FromMilliseconds(100)));

    public static TheoryData<string> HeldOut => new() { "editor", "mixed" };

    [Theory]
    [MemberData(nameof(HeldOut))]
    public void Filling_the_budget_by_recency_never_sends_more_than_holding_predicted_pages_only_on_held_out_workloads(string workload)
    {
        Func<IReplayDirtyPageSource> open = workload == "editor" ? HeldOutEditor : HeldOutMixed;
        SimulationResult none = Simulate(open, SyncPolicy.None);
        Print(none, none);
        foreach (SyncPolicy policy in new[] { SyncPolicy.Predict, SyncPolicy.PredictSlowStart })
        {
            SimulationResult predictedOnly = Simulate(open, policy, new HoldBackOptions { FillBudgetByRecency = false });
            SimulationResult filled = Simulate(open, policy);
            output.Write("(predicted only) ");
            Print(predictedOnly, none);
            Print(filled, none);
            Assert.True(filled.SyncBytes <= predictedOnly.SyncBytes, $"{workload} {policy.Name()}: recency fill sent {filled.SyncBytes} B > {predictedOnly.SyncBytes} B");
            Assert.True(filled.SyncBytes < none.SyncBytes);
            Assert.True(filled.LaunchWithinBudget, $"{workload} {policy.Name()}: launch {filled.LaunchBytes} B > budget {filled.LaunchBudgetBytes} B");
        }
    }
}
