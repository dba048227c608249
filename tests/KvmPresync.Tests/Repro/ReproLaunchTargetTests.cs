using System.Text.Json.Nodes;
using KvmPresync.Cli.Repro;
using KvmPresync.Engine.Convergence;
using KvmPresync.Migration;

namespace KvmPresync.Tests.Repro;

/// <summary>repro's launch-target sweep (modes, trade-off curve, table, JSON) and the readiness error report.</summary>
public sealed class ReproLaunchTargetTests
{
    private static ReproModeRun Run(string mode, int run, double launchMs, long syncBytes, double? estimatedMs = null) => new()
    {
        Workload = "text",
        Mode = mode,
        Run = run,
        Result = new MigrationResult
        {
            Succeeded = true,
            Verified = true,
            LaunchToResumeMs = launchMs,
            DowntimeMs = 3,
            SyncBytes = syncBytes,
            InitialCopyBytes = 100,
            LaunchBytes = 1000,
            ReadinessAtLaunch = estimatedMs is { } e ? new ReadinessCheck(new ReadinessEstimate(e, 2, 1000, 1), launchMs, 3, 1000) : null,
        },
    };

    [Fact]
    public void SweepModesNameTheirTargetAndParseBack()
    {
        string mode = ReproLaunchTargets.ModeFor(TimeSpan.FromMilliseconds(25));
        Assert.Equal("predict+slowstart@25ms", mode);
        Assert.True(ReproLaunchTargets.TryParse(mode, out TimeSpan t));
        Assert.Equal(TimeSpan.FromMilliseconds(25), t);
        Assert.False(ReproLaunchTargets.TryParse("predict+slowstart", out _));
        Assert.Equal([TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(100)], ReproLaunchTargets.ParseList("10ms, 100ms"));
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => ReproLaunchTargets.ParseList("10ms,10ms")).Message);
        Assert.Contains("--launch-target", Assert.Throws<ArgumentException>(() => ReproLaunchTargets.ParseList("0ms")).Message);
    }

    [Fact]
    public void TheTradeOffCurveHasOneMedianPointPerTargetInTargetOrder()
    {
        List<ReproModeRun> runs =
        [
            Run("predict+slowstart", 1, 40, 900), // an ordinary run: not on the curve
            Run("predict+slowstart@100ms", 1, 30, 200), Run("predict+slowstart@100ms", 2, 34, 300),
            Run("predict+slowstart@10ms", 1, 9, 1100), Run("predict+slowstart@10ms", 2, 11, 1300), Run("predict+slowstart@10ms", 3, 10, 1200),
        ];
        var curve = ReproLaunchTargets.Curve(runs, "text");
        Assert.Equal([10.0, 100.0], curve.Select(p => p.TargetMs));
        Assert.Equal(10, curve[0].LaunchToResumeMs);
        Assert.Equal(1200 - 100, curve[0].SteadyBytes);
        Assert.Equal(32, curve[1].LaunchToResumeMs);
        JsonArray json = ReproLaunchTargets.ToJson(runs, "text");
        Assert.Equal(2, json.Count);
        Assert.Equal(10.0, (double)json[0]!["launchTargetMs"]!);
        var table = new StringWriter();
        ReproLaunchTargets.WriteTable(table, runs, ["text"]);
        Assert.Contains("launch-target sweep", table.ToString());
    }

    [Fact]
    public void ReadinessErrorsAreMedianAndP90OfTheAbsoluteErrorsAgainstTheLargerOfTenMsAndTenPercent()
    {
        // errors 1, 2, 3, 4, 20 ms; actual launch-to-resume 100 ms each
        List<ReproModeRun> runs = [.. new[] { 1.0, -2, 3, -4, 20 }.Select((err, i) => Run("predict+slowstart", i + 1, 100, 500, estimatedMs: 100 + err)),
            Run("precopy", 1, 1900, 0)];
        ReproReadiness.Errors e = ReproReadiness.Of(runs, "text")!;
        Assert.Equal(5, e.Runs);
        Assert.Equal(3, e.MedianLaunchErrorMs, 9);
        Assert.Equal(4 + 0.6 * 16, e.P90LaunchErrorMs, 9); // between the 4th (4) and 5th (20) order statistic
        Assert.Equal(10, e.AllowedErrorMs);
        Assert.False(e.WithinTarget);
        Assert.True(ReproReadiness.Of(runs.Take(4).ToList(), "text")!.WithinTarget);
        Assert.Null(ReproReadiness.Of(runs, "audio"));
        Assert.True((bool)ReproReadiness.ToJson(runs.Take(4).ToList(), "text")!["withinTarget"]!);
    }
}
