using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using static KvmPresync.Tests.Presync.PresyncTestSupport;

namespace KvmPresync.Tests.Presync;

public sealed class ChangePredictorTests
{
    [Fact]
    public void Learns_a_period_two_page()
    {
        var predictor = new ChangePredictor(1024);
        const long page = 500;
        // Dirty in even rounds. After an even round (just dirtied) the next round is clean, and vice versa.
        Feed(predictor, 60, r => r % 2 == 0 ? [page] : []);
        // Round 59 (odd) was the last fed: clean now, dirty next.
        Assert.True(predictor.ProbabilityNextRound(page) > 0.9, $"after a clean round P = {predictor.ProbabilityNextRound(page)}");
        Feed(predictor, 1, _ => [page], firstRound: 60);
        Assert.True(predictor.ProbabilityNextRound(page) < 0.1, $"after a dirty round P = {predictor.ProbabilityNextRound(page)}");
        // Either way it will be rewritten within two rounds, so it is worth holding.
        Assert.True(predictor.SoonProbability(page) >= 0.4, $"soon = {predictor.SoonProbability(page)}");
    }

    [Fact]
    public void Always_dirty_page_scores_near_certain()
    {
        var predictor = new ChangePredictor(256);
        Feed(predictor, 30, _ => [7]);
        Assert.True(predictor.ProbabilityNextRound(7) > 0.95);
        Assert.True(predictor.SoonProbability(7) > 0.95);
    }

    [Fact]
    public void Once_written_pages_of_a_stream_score_low()
    {
        // A cursor writes 8 new pages per round and never returns: "written once, never again".
        var predictor = new ChangePredictor(4096);
        Feed(predictor, 200, r => Range(r * 8L, 8));
        long justWritten = 199 * 8;
        Assert.Equal(1, predictor.History(justWritten));
        Assert.True(predictor.ProbabilityNextRound(justWritten) < 0.05, $"P = {predictor.ProbabilityNextRound(justWritten)}");
        Assert.True(predictor.SoonProbability(justWritten) < 0.05, $"soon = {predictor.SoonProbability(justWritten)}");
    }

    [Fact]
    public void Never_dirtied_page_scores_zero()
    {
        var predictor = new ChangePredictor(10_000);
        Feed(predictor, 50, r => Range(0, 100));
        Assert.Equal(0, predictor.NextRoundScore(9_999));
        Assert.Equal(0, predictor.SoonScore(9_999));
    }

    [Fact]
    public void History_shifts_one_bit_per_round_and_page_goes_idle_after_16_clean_rounds()
    {
        var predictor = new ChangePredictor(130);
        Feed(predictor, 1, _ => [129]);
        Feed(predictor, 1, _ => []);
        Feed(predictor, 1, _ => [129]);
        Assert.Equal(0b101, predictor.History(129));
        Assert.Equal(1, predictor.ActivePages);
        Feed(predictor, 15, _ => []);
        Assert.Equal(0b101 << 15 & 0xFFFF, predictor.History(129));
        Assert.Equal(1, predictor.ActivePages);
        Feed(predictor, 1, _ => []);
        Assert.Equal(0, predictor.History(129));
        Assert.Equal(0, predictor.ActivePages);
        Assert.Equal(19, predictor.Rounds);
    }

    [Theory]
    [InlineData(64)]
    [InlineData(100)]
    [InlineData(1000)]
    public void Bulk_forecast_agrees_with_per_page_probability(long pageCount)
    {
        var predictor = new ChangePredictor(pageCount);
        var rng = new Random(3);
        Feed(predictor, 40, r => Range(0, pageCount).Where(p => p % 3 == 0 || (p % 5 == 0 && r % 2 == 0) || rng.NextDouble() < 0.02).ToArray());
        var forecast = new DirtyBitmap(pageCount);
        foreach (double threshold in new[] { 0.0, 0.3, 0.5, 0.9 })
        {
            predictor.PredictNextRound(forecast, threshold);
            int cut = ChangePredictor.ThresholdToScore(threshold);
            for (long p = 0; p < pageCount; p++)
                Assert.Equal(predictor.NextRoundScore(p) >= cut, forecast[p]);
        }
    }

    [Fact]
    public void Update_rejects_a_bitmap_of_another_size()
    {
        var predictor = new ChangePredictor(128);
        var ex = Assert.Throws<ArgumentException>(() => predictor.Update(new DirtyBitmap(64)));
        Assert.Contains("64 pages", ex.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Residual_ranks_frequent_writers_above_occasional_ones_in_the_same_context(bool useResidual)
    {
        // Pages 0..499 are rewritten with probability 0.9 per round, pages 500..999 with probability 0.5.
        // Compare pages that share the context "dirty in each of the last 3 rounds" (several 8-round patterns).
        var rng = new Random(17);
        var predictor = new ChangePredictor(1000, new ChangePredictorOptions { UsePageResidual = useResidual });
        Feed(predictor, 300, _ => Range(0, 1000).Where(p => rng.NextDouble() < (p < 500 ? 0.9 : 0.5)).ToArray());
        // Mean offset of each group's prediction from the shared estimate of its own context.
        double Offset(long first) => Range(first, 500)
            .Where(p => predictor.History(p) != 0)
            .Average(p => predictor.ProbabilityNextRound(p) - predictor.ContextProbabilityNextRound((byte)(predictor.History(p) & 0xFF)));
        double frequent = Offset(0), occasional = Offset(500);
        if (useResidual)
        {
            Assert.True(frequent > 0.02, $"frequent writers' offset {frequent:F3}");
            Assert.True(occasional < -0.02, $"occasional writers' offset {occasional:F3}");
        }
        else
        {
            Assert.InRange(frequent, -0.003, 0.003); // quantization only
            Assert.InRange(occasional, -0.003, 0.003);
        }
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChangePredictor(1, new ChangePredictorOptions { Decay = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChangePredictor(1, new ChangePredictorOptions { PriorWeight = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ChangePredictor.ThresholdToScore(1.5));
    }

    [Fact]
    public void Recency_falls_with_age_on_a_log_scale_and_is_zero_for_a_never_written_page()
    {
        var predictor = new ChangePredictor(128, new ChangePredictorOptions { FirstHarvestIsBacklog = false });
        Feed(predictor, 100, r => r switch { 0 => new long[] { 1 }, 84 => new long[] { 2 }, 99 => new long[] { 3 }, _ => Array.Empty<long>() });
        Assert.Equal(99, predictor.AgeRounds(1));
        Assert.Equal(15, predictor.AgeRounds(2));
        Assert.Equal(0, predictor.AgeRounds(3));
        Assert.Null(predictor.AgeRounds(4));
        Assert.Equal(255, predictor.RecencyScore(3));
        Assert.Equal(255 - 64, predictor.RecencyScore(2)); // 16·log2(16)
        Assert.Equal(255 - (int)Math.Round(16 * Math.Log2(100)), predictor.RecencyScore(1));
        Assert.Equal(0, predictor.RecencyScore(4));
    }

    [Fact]
    public void Page_age_saturates_instead_of_wrapping_after_65536_rounds()
    {
        var predictor = new ChangePredictor(64);
        Feed(predictor, 70_000, r => r switch { 1 => new long[] { 5 }, 69_999 => new long[] { 6 }, _ => Array.Empty<long>() });
        Assert.Equal(ChangePredictor.MaxTrackedAge, predictor.AgeRounds(5));
        Assert.True(predictor.RecencyScore(5) >= 1);
        Assert.Equal(0, predictor.AgeRounds(6));
    }

    [Fact]
    public void Fill_score_ranks_by_rewrite_interval_and_sinks_pages_that_went_quiet()
    {
        var predictor = new ChangePredictor(64);
        // page 1: every 20 rounds, last at round 380; page 2: every 200 rounds, last at round 398 (more recent);
        // page 3: written once (round 390); page 4: every 5 rounds until round 100, then never again.
        Feed(predictor, 400, r => new long[] { 1, 2, 3, 4 }.Where(p => p switch
        {
            1 => r % 20 == 0,
            2 => r % 200 == 198,
            3 => r == 390,
            _ => r <= 100 && r % 5 == 0,
        }));
        Assert.InRange(predictor.RewriteIntervalRounds(1)!.Value, 19.5, 20.5); // kept as 16·log2: within 2 %
        Assert.InRange(predictor.RewriteIntervalRounds(2)!.Value, 195, 205);
        Assert.Null(predictor.RewriteIntervalRounds(3));
        // a rewrite every 20 rounds outranks one every 200, though the latter was written more recently
        Assert.True(predictor.RecencyScore(2) > predictor.RecencyScore(1));
        Assert.True(predictor.FillScore(1) > predictor.FillScore(2), $"{predictor.FillScore(1)} vs {predictor.FillScore(2)}");
        Assert.Equal(255 - (int)Math.Round(16 * Math.Log2(20)), predictor.FillScore(1));
        // written once: recency alone
        Assert.Equal(predictor.RecencyScore(3), predictor.FillScore(3));
        // quiet for 299 rounds after a 5-round habit: ranked by its silence, below the 20-round page
        Assert.Equal(255 - (int)Math.Round(16 * Math.Log2(300)), predictor.FillScore(4));
        Assert.Equal(0, predictor.FillScore(5));
        // the option off: recency, as before
        var plain = new ChangePredictor(64, new ChangePredictorOptions { UseRewriteInterval = false });
        Feed(plain, 400, r => r % 200 == 198 ? [2] : []);
        Assert.Equal(plain.RecencyScore(2), plain.FillScore(2));
        Assert.Null(plain.RewriteIntervalRounds(2));
    }

    [Fact]
    public void The_first_harvest_is_a_backlog_not_evidence_of_writes()
    {
        // KVM's first dirty log holds everything written since boot: those pages are not "ever dirty" on that alone
        var predictor = new ChangePredictor(64);
        Feed(predictor, 30, r => r switch { 0 => new long[] { 1, 2 }, 10 => new long[] { 2 }, _ => Array.Empty<long>() });
        Assert.Null(predictor.AgeRounds(1));
        Assert.Equal(0, predictor.FillScore(1));
        Assert.Equal(19, predictor.AgeRounds(2));
        Assert.Null(predictor.RewriteIntervalRounds(2)); // the backlog gave no first write to measure an interval from
        Assert.True(predictor.FillScore(2) > 0);
        var counted = new ChangePredictor(64, new ChangePredictorOptions { FirstHarvestIsBacklog = false });
        Feed(counted, 30, r => r == 0 ? [1] : []);
        Assert.Equal(29, counted.AgeRounds(1));
    }
}
