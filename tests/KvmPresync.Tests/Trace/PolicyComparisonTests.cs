using KvmPresync.Engine;
using KvmPresync.Trace;

namespace KvmPresync.Tests.Trace;

/// <summary>The oracle as a bound on the synthetic workloads, and the saturated-link test.</summary>
public sealed class PolicyComparisonTests(ITestOutputHelper output)
{
    private static readonly SimulationOptions Measured = new() { WarmUp = TimeSpan.FromSeconds(10), Duration = TimeSpan.FromSeconds(50) };

    public static TheoryData<string> Workloads => new() { "editor", "mixed", "mixed-seed1" };

    private static Func<IReplayDirtyPageSource> Open(string workload) => workload switch
    {
        "editor" => RealTraceTests.HeldOutEditor,
        "mixed" => RealTraceTests.HeldOutMixed,
        _ => () => new SyntheticWorkload(SyntheticWorkloadSpec.Mixed(65_536, TimeSpan.FromSeconds(70), seed: 1, interval: TimeSpan.FromMilliseconds(100))),
    };

    private void Print(PolicyComparisonResult c)
    {
        output.WriteLine($"{c.Source}: {c.Saturation.Describe()}");
        foreach (PolicyOutcome o in c.Outcomes)
            output.WriteLine($"  {o.Policy,-18} sync {o.SyncBytes,15:N0}  launch {o.LaunchBytes,12:N0}  reduction {o.ReductionPercent,6:0.0} %  of oracle {o.OracleFractionPercent,6:0.0} %");
    }

    [Theory]
    [MemberData(nameof(Workloads))]
    public void The_oracle_reduces_at_least_as_much_as_predict_on_synthetic_workloads(string workload)
    {
        PolicyComparisonResult c = PolicyComparison.Run(Open(workload), PolicyComparison.All, Measured, workload);
        Print(c);
        Assert.False(c.Saturation.Saturated);
        Assert.Equal(["none", "predict", "predict+slowstart", "oracle"], c.Outcomes.Select(o => o.Policy));
        PolicyOutcome oracle = c.Outcomes[3];
        Assert.True(oracle.ReductionBytes > 0);
        Assert.Equal(100.0, oracle.OracleFractionPercent);
        Assert.True(oracle.LaunchWithinBudget, $"oracle launch {oracle.LaunchBytes} B over the budget");
        foreach (PolicyOutcome predict in c.Outcomes.Skip(1).Take(2))
        {
            Assert.True(oracle.SyncBytes <= predict.SyncBytes, $"{workload}: oracle sent {oracle.SyncBytes} B > {predict.Policy} {predict.SyncBytes} B");
            Assert.InRange(predict.OracleFractionPercent!.Value, 0, 100);
        }
        Assert.Equal(0, c.Outcomes[0].ReductionBytes);
    }

    [Fact]
    public void Policies_run_in_the_order_asked_after_none_and_without_an_oracle_no_fraction()
    {
        PolicyComparisonResult c = PolicyComparison.Run(RealTraceTests.HeldOutEditor, [SyncPolicy.Predict], Measured with { Duration = TimeSpan.FromSeconds(5) });
        Assert.Equal(["none", "predict"], c.Outcomes.Select(o => o.Policy));
        Assert.All(c.Outcomes, o => Assert.Null(o.OracleFractionPercent));
        Assert.Equal(0, c.OracleIndexBytes);
    }

    [Fact]
    public void Writes_beyond_the_link_are_reported_as_saturation_not_as_a_reduction()
    {
        // 400 pages rewritten every 100 ms = 16.4 MB/s of writes over a 100 Mbit/s (12.5 MB/s) link
        var spec = new SyntheticWorkloadSpec
        {
            PageCount = 16_384,
            Interval = TimeSpan.FromMilliseconds(100),
            Duration = TimeSpan.FromSeconds(20),
            Name = "saturating",
            Behaviours = [new HotSetBehaviour(0, 400), new SequentialBehaviour(1000, 8000, 100)],
        };
        var options = new SimulationOptions { LinkBitsPerSecond = 100e6, WarmUp = TimeSpan.FromSeconds(5), Duration = TimeSpan.FromSeconds(10) };
        PolicyComparisonResult c = PolicyComparison.Run(() => new SyntheticWorkload(spec), PolicyComparison.All, options);
        Print(c);
        Assert.True(c.Saturation.Saturated);
        Assert.Equal(500 * 4112 * 10, c.Saturation.WritesBytesPerSecond, 1e-6);
        Assert.Equal(12.5e6, c.Saturation.LinkBytesPerSecond);
        Assert.Equal("link saturated: writes 20.6 MB/s > link 12.5 MB/s — reduction not meaningful", c.Saturation.Describe());
        Assert.All(c.Outcomes, o => Assert.Null(o.ReductionBytes));
        Assert.All(c.Outcomes, o => Assert.Null(o.ReductionPercent));
        Assert.All(c.Outcomes, o => Assert.Null(o.OracleFractionPercent));
        Assert.True(c.Outcomes[0].LaunchBytes > c.Outcomes[0].LaunchBudgetBytes, "none should be behind: its pending set grows");
    }

    [Fact]
    public void Saturation_is_measured_over_the_measured_period_only()
    {
        // the initial copy (16,384 pages) in the warm-up does not count as writes
        var spec = new SyntheticWorkloadSpec
        {
            PageCount = 16_384,
            Interval = TimeSpan.FromMilliseconds(100),
            Duration = TimeSpan.FromSeconds(10),
            Behaviours = [new HotSetBehaviour(0, 10)],
        };
        var none = Simulator.Run(new SyntheticWorkload(spec), new SimulationOptions { Policy = SyncPolicy.None, WarmUp = TimeSpan.FromSeconds(2), Duration = TimeSpan.FromSeconds(5) });
        LinkSaturation s = LinkSaturation.Measure(none, 16);
        Assert.Equal(10 * 4112 * 10, s.WritesBytesPerSecond, 1e-6);
        Assert.Equal(5.1, s.MeasuredSeconds, 1e-9); // 51 rounds at t = 2.0 … 7.0 s, each covering the 100 ms before it
        Assert.False(s.Saturated);
    }
}
