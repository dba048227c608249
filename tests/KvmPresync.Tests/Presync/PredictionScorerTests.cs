using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using static KvmPresync.Tests.Presync.PresyncTestSupport;

namespace KvmPresync.Tests.Presync;

public sealed class PredictionScorerTests
{
    [Fact]
    public void Counts_baselines_exactly_on_a_hand_built_sequence()
    {
        // 64 pages; rounds: {1,2}, {2,3}, {3}
        var scorer = new PredictionScorer(new ChangePredictor(64));
        scorer.Observe(Bitmap(64, 1, 2));
        scorer.Observe(Bitmap(64, 2, 3));
        scorer.Observe(Bitmap(64, 3));
        var report = scorer.Report();
        Assert.Equal(2, report.Rounds);
        // Dirty-last-round: predicted {1,2} vs {2,3}: TP 1 (2), FP 1 (1), FN 1 (3); then {2,3} vs {3}: TP 1, FP 1, FN 0.
        Assert.Equal(new ConfusionCounts(2, 2, 1, 2 * 64 - 5), report.DirtyLastRound);
        Assert.Equal(0.5, report.DirtyLastRound.Precision);
        Assert.Equal(2.0 / 3, report.DirtyLastRound.Recall, 12);
        // Never-predict: every dirty page is a miss.
        Assert.Equal(new ConfusionCounts(0, 0, 3, 2 * 64 - 3), report.NeverPredict);
        Assert.Equal(0, report.NeverPredict.Precision);
        Assert.Equal(0, report.NeverPredict.Recall);
        var m = report.Markov;
        Assert.Equal(2 * 64, m.TruePositives + m.FalsePositives + m.FalseNegatives + m.TrueNegatives);
    }

    [Fact]
    public void Markov_beats_dirty_last_round_on_periodic_and_hot_pages()
    {
        // 100 hot pages, 100 period-2 pages, 100 period-3 pages in a 4096-page guest.
        var scorer = new PredictionScorer(new ChangePredictor(4096));
        for (int r = 0; r < 200; r++)
        {
            var pages = Range(0, 100)
                .Concat(Range(100, 100).Where(p => (p + r) % 2 == 0))
                .Concat(Range(200, 100).Where(p => (p + r) % 3 == 0));
            scorer.Observe(Bitmap(4096, pages.ToArray()));
        }
        var report = scorer.Report();
        Assert.True(report.Markov.Precision > 0.95, $"markov precision {report.Markov.Precision}");
        Assert.True(report.Markov.Recall > 0.95, $"markov recall {report.Markov.Recall}");
        Assert.True(report.Markov.F1 > report.DirtyLastRound.F1 + 0.2, $"markov F1 {report.Markov.F1} vs last-round {report.DirtyLastRound.F1}");
        Assert.Equal(0, report.NeverPredict.Recall);
    }
}
