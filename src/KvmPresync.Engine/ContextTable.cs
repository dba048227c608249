using KvmPresync.Core;
using System.Numerics;

namespace KvmPresync.Engine;

/// <summary>
/// The shared half of the predictor: for each 8-round history pattern (context), decayed counts of how often a
/// page in that context was followed by the outcome being learnt, pooled over all pages. Counts for one round
/// are accumulated as integers and folded in once per round; the resulting estimates are kept quantized to
/// 0..255 so the per-page path is a byte lookup.
/// </summary>
internal sealed class ContextTable
{
    public const int Contexts = 256;

    private readonly double[] _weight = new double[Contexts];
    private readonly double[] _sum = new double[Contexts];
    private readonly double[] _prior = new double[Contexts];
    private readonly byte[] _quantized = new byte[Contexts];
    private readonly double _decay;
    private readonly double _priorWeight;

    /// <summary>Pages seen in each context this round (written by the predictor's update loop).</summary>
    public readonly long[] RoundCount = new long[Contexts];

    /// <summary>Sum of outcomes (0..255 fixed point) per context this round.</summary>
    public readonly long[] RoundSum = new long[Contexts];

    public ContextTable(double decay, double priorWeight)
    {
        _decay = decay;
        _priorWeight = priorWeight;
        for (int c = 0; c < Contexts; c++)
        {
            // Prior before any evidence: the fraction of the last 8 rounds the page was dirty.
            _prior[c] = BitOperations.PopCount((uint)c) / 8.0;
        }
        Requantize();
    }

    /// <summary>Current estimate per context, 0..255 (255 = certain).</summary>
    public ReadOnlySpan<byte> Quantized => _quantized;

    /// <summary>Estimate of context <paramref name="context"/> as a probability.</summary>
    public double Estimate(int context) => (_sum[context] + _priorWeight * _prior[context]) / (_weight[context] + _priorWeight);

    /// <summary>Evidence weight N of a context (decayed count of pages observed in it).</summary>
    public double Weight(int context) => _weight[context];

    /// <summary>
    /// Folds this round's counts in: N ← λN + n, S ← λS + s/255; <paramref name="unseenPages"/> pages that the
    /// update loop skipped (history 0, clean) count as context 0 with outcome 0. Clears the round counters.
    /// </summary>
    public void EndRound(long unseenPages)
    {
        RoundCount[0] += unseenPages;
        for (int c = 0; c < Contexts; c++)
        {
            _weight[c] = _decay * _weight[c] + RoundCount[c];
            _sum[c] = _decay * _sum[c] + RoundSum[c] / 255.0;
            RoundCount[c] = 0;
            RoundSum[c] = 0;
        }
        Requantize();
    }

    private void Requantize()
    {
        for (int c = 0; c < Contexts; c++)
            _quantized[c] = (byte)Math.Clamp((int)Math.Round(255.0 * Estimate(c)), 0, 255);
    }
}
