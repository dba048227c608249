using KvmPresync.Core;
using System.Numerics;
using KvmPresync.Memory;

namespace KvmPresync.Engine;

/// <summary>Confusion counts of a yes/no forecast "page dirtied again in the next round", over page-rounds.</summary>
public readonly record struct ConfusionCounts(long TruePositives, long FalsePositives, long FalseNegatives, long TrueNegatives)
{
    /// <summary>TP / (TP + FP); 0 when nothing was predicted.</summary>
    public double Precision => TruePositives + FalsePositives == 0 ? 0 : (double)TruePositives / (TruePositives + FalsePositives);

    /// <summary>TP / (TP + FN); 0 when nothing was dirtied.</summary>
    public double Recall => TruePositives + FalseNegatives == 0 ? 0 : (double)TruePositives / (TruePositives + FalseNegatives);

    public double F1 => Precision + Recall == 0 ? 0 : 2 * Precision * Recall / (Precision + Recall);

    public long Predicted => TruePositives + FalsePositives;

    internal ConfusionCounts Add(long tp, long fp, long fn, long tn) =>
        new(TruePositives + tp, FalsePositives + fp, FalseNegatives + fn, TrueNegatives + tn);
}

/// <summary>Precision/recall of the Markov predictor and of two baselines over the same rounds.</summary>
/// <param name="Markov">The <see cref="ChangePredictor"/> at the given threshold.</param>
/// <param name="DirtyLastRound">Baseline: a page dirtied this round will be dirtied next round.</param>
/// <param name="NeverPredict">Baseline: no page will be dirtied (what sending everything assumes).</param>
/// <param name="Rounds">Rounds scored (every round after the first).</param>
/// <param name="Threshold">Probability at or above which the predictor says "dirty".</param>
public sealed record PredictionReport(ConfusionCounts Markov, ConfusionCounts DirtyLastRound, ConfusionCounts NeverPredict, long Rounds, double Threshold);

/// <summary>
/// Scores the predictor online: each <see cref="Observe"/> compares the forecasts made after the previous round
/// with this round's dirty pages, then updates the predictor and forecasts the next round.
/// </summary>
public sealed class PredictionScorer
{
    private readonly ChangePredictor _predictor;
    private readonly double _threshold;
    private readonly DirtyBitmap _forecast;
    private readonly DirtyBitmap _lastDirty;
    private ConfusionCounts _markov, _last, _never;
    private long _rounds;
    private bool _haveForecast;

    public PredictionScorer(ChangePredictor predictor, double threshold = 0.5)
    {
        ArgumentNullException.ThrowIfNull(predictor);
        ChangePredictor.ThresholdToScore(threshold);
        _predictor = predictor;
        _threshold = threshold;
        _forecast = new DirtyBitmap(predictor.PageCount);
        _lastDirty = new DirtyBitmap(predictor.PageCount);
    }

    /// <summary>Feeds one round's dirty pages (the harvest).</summary>
    public void Observe(DirtyBitmap dirtyThisRound)
    {
        ArgumentNullException.ThrowIfNull(dirtyThisRound);
        if (_haveForecast)
        {
            _markov = Score(_markov, _forecast, dirtyThisRound);
            _last = Score(_last, _lastDirty, dirtyThisRound);
            long dirty = dirtyThisRound.Count();
            _never = _never.Add(0, 0, dirty, _predictor.PageCount - dirty);
            _rounds++;
        }
        _predictor.Update(dirtyThisRound);
        _predictor.PredictNextRound(_forecast, _threshold);
        _lastDirty.CopyFrom(dirtyThisRound);
        _haveForecast = true;
    }

    public PredictionReport Report() => new(_markov, _last, _never, _rounds, _threshold);

    private ConfusionCounts Score(ConfusionCounts acc, DirtyBitmap predicted, DirtyBitmap actual)
    {
        ReadOnlySpan<ulong> p = predicted.ReadOnlyWords, a = actual.ReadOnlyWords;
        long tp = 0, fp = 0, fn = 0;
        for (int i = 0; i < p.Length; i++)
        {
            tp += BitOperations.PopCount(p[i] & a[i]);
            fp += BitOperations.PopCount(p[i] & ~a[i]);
            fn += BitOperations.PopCount(~p[i] & a[i]);
        }
        return acc.Add(tp, fp, fn, _predictor.PageCount - tp - fp - fn);
    }
}
