using System.Text.Json;
using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using KvmPresync.Trace;

namespace KvmPresync.Tests.Trace;

public sealed class SimulatorTests
{
    private const long Full = 4096 + 16;

    private static SyntheticWorkload Hot(long pages, long hot, double seconds) => new(new SyntheticWorkloadSpec
    {
        PageCount = pages,
        Interval = TimeSpan.FromMilliseconds(50),
        Duration = TimeSpan.FromSeconds(seconds),
        Behaviours = [new HotSetBehaviour(0, hot)],
    });

    [Fact]
    public void None_resends_a_hot_set_every_round()
    {
        var r = Simulator.Run(Hot(1024, 10, 2), new SimulationOptions { Policy = SyncPolicy.None, InitialCopy = false, Duration = TimeSpan.FromSeconds(1) });
        Assert.Equal(11, r.SyncRounds.Count); // t = 0, 0.1, ..., 1.0 s
        Assert.Equal(0, r.Rounds[0].SentPages);
        Assert.All(r.SyncRounds.Skip(1), x => Assert.Equal(10, x.SentPages));
        Assert.Equal(10 * 10 * Full, r.SyncBytes);
        Assert.Equal(0, r.LaunchBytes);
        Assert.Equal("none", r.Policy);
    }

    [Fact]
    public void Predict_holds_the_hot_set_back_and_leaves_it_for_launch()
    {
        var r = Simulator.Run(Hot(1024, 10, 6), new SimulationOptions { Policy = SyncPolicy.Predict, InitialCopy = false, Duration = TimeSpan.FromSeconds(5) });
        // Rounds 1 and 2 send (history too short to trust); from then on the hot pages are held.
        Assert.True(r.SyncBytes <= 2 * 10 * Full, $"sent {r.SyncBytes}");
        Assert.All(r.SyncRounds.Skip(3), x => Assert.Equal(10, x.HeldPages));
        Assert.Equal(10 * Full, r.LaunchBytes);
        Assert.True(r.LaunchWithinBudget);
    }

    [Fact]
    public void Predict_sends_at_least_70_percent_fewer_bytes_than_none_on_a_mixed_workload_within_the_launch_budget()
    {
        var spec = SyntheticWorkloadSpec.Mixed(65_536, TimeSpan.FromSeconds(60)); // 256 MiB guest, 60 s
        var none = Simulator.Run(new SyntheticWorkload(spec), new SimulationOptions { Policy = SyncPolicy.None, Duration = TimeSpan.FromSeconds(60) });
        var predict = Simulator.Run(new SyntheticWorkload(spec), new SimulationOptions { Policy = SyncPolicy.Predict, Duration = TimeSpan.FromSeconds(60) });
        Assert.Equal(none.InitialCopyBytes, predict.InitialCopyBytes);
        Assert.True(predict.SyncBytes <= 0.3 * none.SyncBytes, $"predict {predict.SyncBytes} vs none {none.SyncBytes}");
        Assert.True(predict.LaunchBytes <= predict.LaunchBudgetBytes, $"launch {predict.LaunchBytes} > budget {predict.LaunchBudgetBytes}");
        Assert.All(predict.SyncRounds, x => Assert.True(x.HeldBytes <= predict.LaunchBudgetBytes));
    }

    [Fact]
    public void Warm_up_absorbs_the_initial_copy_and_the_measured_period_follows_it()
    {
        var spec = SyntheticWorkloadSpec.Mixed(8192, TimeSpan.FromSeconds(10));
        var options = new SimulationOptions { Policy = SyncPolicy.None, WarmUp = TimeSpan.FromSeconds(2), Duration = TimeSpan.FromSeconds(3) };
        var r = Simulator.Run(new SyntheticWorkload(spec), options);
        Assert.Equal(2000, r.MeasuredFromMs);
        Assert.Equal(5000, r.DurationMs);
        Assert.Equal(51, r.SyncRounds.Count);
        Assert.Equal(r.SyncRounds.Where(x => x.TimeMs < 2000).Sum(x => x.SentBytes), r.WarmUpBytes);
        Assert.Equal(r.SyncRounds.Where(x => x.TimeMs >= 2000).Sum(x => x.SentBytes), r.SyncBytes);
        Assert.True(r.WarmUpBytes >= r.InitialCopyBytes); // 32 MiB at 1 Gbit/s is copied within the warm-up
        var cold = Simulator.Run(new SyntheticWorkload(spec), options with { WarmUp = TimeSpan.Zero, Duration = TimeSpan.FromSeconds(5) });
        Assert.Equal(r.WarmUpBytes + r.SyncBytes, cold.SyncBytes);
    }

    [Fact]
    public void Per_round_sends_never_exceed_the_link_without_slow_start()
    {
        var r = Simulator.Run(new SyntheticWorkload(SyntheticWorkloadSpec.Mixed(65_536, TimeSpan.FromSeconds(5))),
            new SimulationOptions { Policy = SyncPolicy.None, LinkBitsPerSecond = 100e6 });
        long capacity = (long)(100e6 / 8 * 0.1);
        Assert.All(r.SyncRounds, x => Assert.True(x.SentBytes <= capacity));
        Assert.Contains(r.SyncRounds, x => x.DeferredPages > 0); // 256 MiB at 100 Mbit/s takes ~21 s: the copy is still going
        Assert.True(r.LaunchBytes > r.LaunchBudgetBytes);
        Assert.False(r.LaunchWithinBudget);
    }

    [Fact]
    public void Initial_copy_costs_a_header_for_known_zero_pages()
    {
        var nonZero = new DirtyBitmap(1024);
        for (long p = 0; p < 100; p++) nonZero.Set(p);
        var r = Simulator.Run(Hot(1024, 0, 1), new SimulationOptions { Policy = SyncPolicy.None, NonZeroPages = nonZero });
        Assert.Equal(100 * 4096 + 1024 * 16, r.InitialCopyBytes);
        Assert.Equal(r.InitialCopyBytes, r.SyncBytes);
        Assert.Equal(r.InitialCopyBytes, r.Rounds[0].SentBytes);
    }

    [Fact]
    public void Slow_start_grows_then_backs_off_when_it_overruns_the_link()
    {
        var r = Simulator.Run(new SyntheticWorkload(SyntheticWorkloadSpec.Mixed(65_536, TimeSpan.FromSeconds(10))),
            new SimulationOptions { Policy = SyncPolicy.PredictSlowStart });
        Assert.Equal("predict+slowstart", r.Policy);
        Assert.Equal(1 << 20, r.Rounds[0].WindowBytes);
        Assert.Equal(WindowReason.SlowStartGrowth, r.Rounds[0].WindowReason);
        Assert.Contains(r.Rounds, x => x.WindowReason == WindowReason.DecreaseOnRtt || x.WindowReason == WindowReason.DecreaseOnGoodput);
        Assert.All(r.SyncRounds, x => Assert.True(x.SentBytes <= x.WindowBytes));
        Assert.All(r.SyncRounds, x => Assert.InRange(x.IntervalMs, 50, 2000));
    }

    [Fact]
    public void Result_serializes_to_camel_case_json_with_the_top_level_totals()
    {
        var r = Simulator.Run(Hot(256, 4, 1), new SimulationOptions { Policy = SyncPolicy.PredictSlowStart });
        using var doc = JsonDocument.Parse(r.ToJson());
        var root = doc.RootElement;
        Assert.Equal(r.SyncBytes, root.GetProperty("syncBytes").GetInt64());
        Assert.Equal(r.LaunchBytes, root.GetProperty("launchBytes").GetInt64());
        Assert.Equal(r.Rounds.Count, root.GetProperty("rounds").GetArrayLength());
        var first = root.GetProperty("rounds")[0];
        Assert.Equal(0, first.GetProperty("round").GetInt64());
        Assert.Equal("slowStartGrowth", first.GetProperty("windowReason").GetString());
        Assert.True(first.TryGetProperty("remainingAtLaunchBytes", out _));
        Assert.Equal(r, SimulationResult.FromJson(r.ToJson()) with { Rounds = r.Rounds });
    }

    [Fact]
    public void Replaying_a_trace_file_gives_the_same_result_as_the_live_source()
    {
        var spec = SyntheticWorkloadSpec.Mixed(4096, TimeSpan.FromSeconds(3), seed: 11);
        var stream = new MemoryStream();
        var recordSource = new SyntheticWorkload(spec);
        using (var writer = new TraceWriter(stream, ReplaySources.HeaderFor(recordSource), leaveOpen: true))
            recordSource.WriteTo(writer);
        var options = new SimulationOptions { Policy = SyncPolicy.Predict };
        var live = Simulator.Run(new SyntheticWorkload(spec), options);
        using var replay = new TraceReplaySource(new TraceReader(new MemoryStream(stream.ToArray()), "mixed.kpt"));
        var replayed = Simulator.Run(replay, options);
        Assert.Equal(live.SyncBytes, replayed.SyncBytes);
        Assert.Equal(live.LaunchBytes, replayed.LaunchBytes);
        Assert.Equal(live.Rounds, replayed.Rounds);
    }

    [Fact]
    public void Predictor_evaluation_beats_the_dirty_last_round_baseline_on_a_mixed_workload()
    {
        var report = Simulator.EvaluatePredictor(new SyntheticWorkload(SyntheticWorkloadSpec.Mixed(65_536, TimeSpan.FromSeconds(20))),
            TimeSpan.FromMilliseconds(100));
        Assert.Equal(199, report.Rounds);
        Assert.True(report.Markov.F1 > report.DirtyLastRound.F1, $"markov {report.Markov} vs last {report.DirtyLastRound}");
        Assert.Equal(0, report.NeverPredict.Predicted);
    }

    [Fact]
    public void Policy_names_parse_as_the_cli_spells_them()
    {
        Assert.Equal(SyncPolicy.None, SyncPolicyNames.Parse("none"));
        Assert.Equal(SyncPolicy.Predict, SyncPolicyNames.Parse("predict"));
        Assert.Equal(SyncPolicy.PredictSlowStart, SyncPolicyNames.Parse("predict+slowstart"));
        Assert.Equal(SyncPolicy.SlowStart, SyncPolicyNames.Parse("slowstart"));
        Assert.Equal("predict+slowstart", SyncPolicy.PredictSlowStart.Name());
        Assert.Equal("slowstart", SyncPolicy.SlowStart.Name());
        Assert.Equal(SyncPolicy.Oracle, SyncPolicyNames.Parse("oracle"));
        Assert.Equal("oracle", SyncPolicy.Oracle.Name());
        Assert.Contains("expected none, slowstart, predict, predict+slowstart or oracle", Assert.Throws<ArgumentException>(() => SyncPolicyNames.Parse("fast")).Message);
    }
}
