using KvmPresync.Engine;
using KvmPresync.Memory;
using KvmPresync.Trace;

namespace KvmPresync.Tests.Trace;

/// <summary>The future-knowledge bound on hand-made traces whose best hold set is known.</summary>
public sealed class OracleTests
{
    private const long Full = 4096 + 16;

    /// <summary>
    /// A launch target whose budget at 1 Gbit/s (12.5 B per 100 ns tick, in <see cref="LaunchBudget.HeldShare"/> of the target)
    /// holds exactly <paramref name="pages"/> pages.
    /// </summary>
    private static TimeSpan BudgetOf(int pages) => TimeSpan.FromTicks((long)Math.Ceiling(pages * Full / 12.5 / LaunchBudget.HeldShare));

    private static SimulationOptions Options(int budgetPages, int rounds) => new()
    {
        Policy = SyncPolicy.Oracle,
        InitialCopy = false,
        LaunchTarget = BudgetOf(budgetPages),
        Duration = (rounds - 1) * ScriptedSource.Round,
        SimulateLaunch = false,
    };

    private static SimulationResult Run(long pageCount, List<long[]> script, SimulationOptions options)
    {
        FutureWrites future = FutureWrites.For(() => new ScriptedSource(pageCount, script), options);
        return Simulator.Run(new ScriptedSource(pageCount, script), options, future);
    }

    [Fact]
    public void Budget_helper_holds_exactly_the_pages_asked()
    {
        Assert.Equal(2, LaunchBudget.ForTarget(1e9, BudgetOf(2)).Pages(Full));
    }

    [Fact]
    public void A_page_rewritten_every_round_is_held_and_a_page_never_rewritten_is_sent()
    {
        const int rounds = 21;
        var script = ScriptedSource.Schedule(rounds, (1, Enumerable.Range(0, rounds).ToArray()), (2, [0]), (3, [0]));
        SimulationResult r = Run(64, script, Options(budgetPages: 1, rounds));
        Assert.Equal(2 * Full, r.SyncBytes);              // pages 2 and 3, once each, in round 0
        Assert.Equal(2, r.Rounds[0].SentPages);
        Assert.All(r.SyncRounds, x => Assert.Equal(1, x.HeldPages));
        Assert.Equal(Full, r.LaunchBytes);                  // page 1 goes at launch
    }

    [Fact]
    public void Spare_budget_holds_pages_written_before_but_never_pages_only_the_initial_copy_holds()
    {
        const int rounds = 11;
        var script = ScriptedSource.Schedule(rounds, (1, Enumerable.Range(0, rounds).ToArray()), (2, [0]));
        SimulationResult r = Run(64, script, Options(budgetPages: 3, rounds) with { InitialCopy = true });
        // page 1 (rewritten) and page 2 (written once, budget to spare) are held; the other 62 pages are sent in round 0
        Assert.Equal(62 * Full, r.SyncBytes);
        Assert.Equal(62, r.Rounds[0].SentPages);
        Assert.All(r.SyncRounds, x => Assert.Equal(2, x.HeldPages));
    }

    [Fact]
    public void The_budget_goes_to_the_pages_whose_next_write_is_soonest()
    {
        // Round 0 writes A, B, C, D; next writes: B in 2 rounds, A in 5, C in 9, D never. Budget: 2 pages.
        const long a = 10, b = 11, c = 12, d = 13;
        var script = ScriptedSource.Schedule(12, (a, [0, 5]), (b, [0, 2]), (c, [0, 9]), (d, [0]));
        var options = Options(budgetPages: 2, 12);
        var future = FutureWrites.For(() => new ScriptedSource(64, script), options);
        var engine = new SyncEngine(64, 4096, options.ToEngineOptions(), null, future);
        var send = new DirtyBitmap(64);
        var harvest = new DirtyBitmap(64);
        var source = new ScriptedSource(64, script);
        source.Harvest(harvest);
        RoundPlan plan = engine.PlanSyncRound(harvest, send);
        Assert.Equal(2, plan.HeldPages);
        Assert.True(engine.Held[a] && engine.Held[b]);
        Assert.True(send[c] && send[d]);
    }

    [Fact]
    public void Belady_holds_the_period_2_page_and_resends_the_period_3_page()
    {
        // A every 3 rounds, B every 2, budget 1 page, rounds 0..11: B's next write is always sooner, so B is held
        // throughout and A is sent at each of its writes (0, 3, 6, 9).
        const int rounds = 12;
        var script = ScriptedSource.Schedule(rounds, (0, [0, 3, 6, 9]), (1, [0, 2, 4, 6, 8, 10]));
        SimulationResult r = Run(64, script, Options(budgetPages: 1, rounds));
        Assert.Equal(4 * Full, r.SyncBytes);
        Assert.All(r.SyncRounds, x => Assert.Equal(1, x.HeldPages));
    }

    [Fact]
    public void The_engine_refuses_the_oracle_without_future_knowledge()
    {
        var e = Assert.Throws<ArgumentException>(() => new SyncEngine(64, 4096, new SyncEngineOptions { Policy = SyncPolicy.Oracle }));
        Assert.Contains("simulate", e.Message);
        Assert.Contains("cannot know", e.Message);
        var s = Assert.Throws<ArgumentException>(() => Simulator.Run(new ScriptedSource(64, []), new SimulationOptions { Policy = SyncPolicy.Oracle }));
        Assert.Contains("FutureWrites", s.Message);
    }

    [Fact]
    public void Live_runs_refuse_policy_oracle_with_the_reason()
    {
        var e = Assert.Throws<ArgumentException>(() => KvmPresync.Cli.Commands.MigrationOptions.ParseLivePolicy("oracle"));
        Assert.Contains("simulate", e.Message);
        Assert.Equal(SyncPolicy.Predict, KvmPresync.Cli.Commands.MigrationOptions.ParseLivePolicy("predict"));
    }

    [Theory]
    [InlineData(1, 511)]
    [InlineData(448, 64)]
    [InlineData(449, 63)]
    [InlineData(1_000_000, 44)]
    public void Keys_fall_with_the_distance_and_stay_above_the_spare_budget_tier(long rounds, int key)
    {
        Assert.Equal(key, OracleRanking.KeyForDistance(rounds));
        Assert.True(OracleRanking.KeyForDistance(long.MaxValue / 2) > OracleRanking.SpareBudgetKey);
    }
}
