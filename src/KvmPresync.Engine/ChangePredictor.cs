using KvmPresync.Core;
using System.Numerics;
using System.Runtime.CompilerServices;
using KvmPresync.Memory;

namespace KvmPresync.Engine;

/// <summary>
/// The memory-change probabilistic predictor: a Markov model of each page's dirty/clean sequence across rounds.
/// </summary>
/// <remarks>
/// <para>State per page (4 bytes, structure of arrays): a 16-bit history (bit i = dirty i rounds ago) and two
/// signed 8-bit residuals. Per 64-page word, one "active" bit per page marks a non-zero history.</para>
/// <para>Model: the context of a page is its last 8 rounds (history &amp; 0xFF, 256 patterns). Two tables shared by
/// all pages learn, per context, (a) P(dirty in the next round) and (b) the "soon" value E[1/d] where d is the
/// number of rounds until the page is next dirtied (0 when d &gt; 8). A page's own residual corrects its
/// context's estimate by how far its outcomes ran above or below it. The tables learn behaviour — periodicity,
/// bursts, recency — from the workload itself rather than from a fixed model. Formulas: docs/POLICIES.md.</para>
/// <para>Update cost: word at a time; a 64-page word with no dirty page and no active page is skipped with one
/// OR and compare, so long-clean memory costs ~1 ns per 64 pages. Not thread-safe: one round at a time.</para>
/// </remarks>
public sealed class ChangePredictor
{
    /// <summary>Rounds of history kept per page.</summary>
    public const int HistoryRounds = 16;

    /// <summary>Rounds of history forming the context (the Markov order).</summary>
    public const int ContextRounds = 8;

    /// <summary>Rounds ahead the "soon" value looks (pages next dirtied later than this score 0).</summary>
    public const int Horizon = 8;

    // SoonValue[b]: the "soon" outcome for a decision made Horizon rounds ago, given the low 8 history bits b
    // (bit i = dirty i rounds ago): 255 / d where d is the first round after the decision in which the page was dirty.
    private static readonly byte[] SoonValue = BuildSoonValue();

    /// <summary>Ages are kept exact up to this many rounds (then saturate): about 55 min at 100 ms rounds.</summary>
    public const int MaxTrackedAge = 1 << 15;

    // RecencyOfAge[a]: 255 − round(16·log2(a + 1)), at least 1 — recency on a log scale, for a = rounds since the last write.
    private static readonly byte[] RecencyOfAge = BuildRecency();

    private readonly ushort[] _history;
    private readonly sbyte[] _residualNext;
    private readonly sbyte[] _residualSoon;
    private readonly ulong[] _active;
    private readonly ulong[] _everDirty;     // 1 bit per page: dirtied at least once since the predictor started
    private readonly ushort[] _lastDirty;    // round stamp (mod 2^16) of the page's last write; ages saturate at MaxTrackedAge
    private readonly byte[] _gap;            // 0 = written at most once; else 1 + the page's typical rewrite interval as 16·log2(rounds) (a running mean)
    private readonly bool _useGap;
    private readonly ContextTable _next;
    private readonly ContextTable _soon;
    private readonly bool _useResidual;
    private readonly int _residualShift;

    public ChangePredictor(long pageCount, ChangePredictorOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pageCount);
        options ??= new ChangePredictorOptions();
        if (pageCount > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount, $"the predictor supports at most {Array.MaxLength} pages");
        PageCount = pageCount;
        Options = options;
        _history = new ushort[pageCount];
        _useResidual = options.UsePageResidual;
        _residualShift = options.ResidualShift;
        _residualNext = new sbyte[_useResidual ? pageCount : 0];
        _residualSoon = new sbyte[_useResidual ? pageCount : 0];
        _active = new ulong[(pageCount + 63) / 64];
        _everDirty = new ulong[(pageCount + 63) / 64];
        _lastDirty = new ushort[pageCount];
        _useGap = options.UseRewriteInterval;
        _gap = new byte[_useGap ? pageCount : 0];
        _next = new ContextTable(options.Decay, options.PriorWeight);
        _soon = new ContextTable(options.Decay, options.PriorWeight);
    }

    public long PageCount { get; }

    public ChangePredictorOptions Options { get; }

    /// <summary>Rounds observed so far.</summary>
    public long Rounds { get; private set; }

    /// <summary>Pages with a non-zero history (dirtied within the last 16 rounds) after the last update.</summary>
    public long ActivePages { get; private set; }

    /// <summary>
    /// Advances every page by one round: pages set in <paramref name="dirtyThisRound"/> were dirtied during the
    /// round that just ended (the harvest), all others stayed clean. Learns from the outcome, then shifts histories.
    /// </summary>
    public void Update(DirtyBitmap dirtyThisRound)
    {
        ArgumentNullException.ThrowIfNull(dirtyThisRound);
        if (dirtyThisRound.PageCount != PageCount)
            throw new ArgumentException($"dirty bitmap covers {dirtyThisRound.PageCount} pages, predictor covers {PageCount}", nameof(dirtyThisRound));

        ReadOnlySpan<ulong> dirtyWords = dirtyThisRound.ReadOnlyWords;
        ReadOnlySpan<byte> qNext = _next.Quantized;
        ReadOnlySpan<byte> qSoon = _soon.Quantized;
        long[] nextCount = _next.RoundCount, nextSum = _next.RoundSum;
        long[] soonCount = _soon.RoundCount, soonSum = _soon.RoundSum;
        ushort[] history = _history;
        ushort[] lastDirty = _lastDirty;
        ushort stamp = (ushort)Rounds;
        long seen = 0, active = 0;
        // The first harvest is a backlog — everything written since the guest booted (KVM's first dirty log) or present
        // when tracking began (a capture's first scan) — not writes seen in one round: it feeds the histories but is no
        // evidence that a page is ever written (no stamp, not "ever dirty", so not a budget-fill candidate).
        bool backlog = Rounds == 0 && Options.FirstHarvestIsBacklog;

        for (int w = 0; w < dirtyWords.Length; w++)
        {
            ulong dirty = dirtyWords[w];
            ulong todo = _active[w] | dirty;
            if (todo == 0) continue; // fast path: 64 pages clean now and for the last 16 rounds
            ulong stillActive = 0;
            ulong everBefore = _everDirty[w];
            long first = (long)w << 6;
            while (todo != 0)
            {
                int bit = BitOperations.TrailingZeroCount(todo);
                todo &= todo - 1;
                long page = first + bit;
                int d = (int)(dirty >> bit) & 1;
                int h = ((history[page] << 1) | d) & 0xFFFF;
                history[page] = (ushort)h;
                if (h != 0) stillActive |= 1UL << bit;
                if (d != 0 && !backlog)
                {
                    if (_useGap && (everBefore >> bit & 1) != 0) LearnGap(page, (ushort)(stamp - lastDirty[page]));
                    lastDirty[page] = stamp;
                }

                // (a) next round: the context one round ago (bits 1..8) was followed by outcome d.
                int ctxNext = (h >> 1) & 0xFF;
                nextCount[ctxNext]++;
                nextSum[ctxNext] += d * 255;

                // (b) soon: the context Horizon rounds ago (bits 8..15) was followed by SoonValue of bits 0..7.
                int ctxSoon = h >> Horizon;
                int soon = SoonValue[h & 0xFF];
                soonCount[ctxSoon]++;
                soonSum[ctxSoon] += soon;

                if (_useResidual)
                {
                    // Only from a non-empty context: a write out of an idle stretch says nothing about this page's habits.
                    if (ctxNext != 0)
                        _residualNext[page] = Learn(_residualNext[page], d * 255 - qNext[ctxNext]);
                    if (ctxSoon != 0)
                        _residualSoon[page] = Learn(_residualSoon[page], soon - qSoon[ctxSoon]);
                }
                seen++;
            }
            _active[w] = stillActive;
            if (!backlog) _everDirty[w] |= dirty;
            active += BitOperations.PopCount(stillActive);
        }

        _next.EndRound(PageCount - seen);
        _soon.EndRound(PageCount - seen);
        ActivePages = active;
        Rounds++;
        if ((Rounds & (MaxTrackedAge / 2 - 1)) == 0) SaturateAges();
    }

    /// <summary>
    /// Rounds since <paramref name="page"/> was last dirtied (0 = in the last round observed), saturating at
    /// <see cref="MaxTrackedAge"/>; null if it has not been dirtied since the predictor started.
    /// </summary>
    public int? AgeRounds(long page)
    {
        CheckPage(page);
        return (_everDirty[page >> 6] >> (int)(page & 63) & 1) == 0 ? null : Age(page);
    }

    /// <summary>
    /// Recency rank for pages beyond the predictor's horizon, 1..255: 255 − round(16·log2(age + 1)) with age = rounds
    /// since the last write (a page written in the last round scores 255, 15 rounds ago 191, 255 rounds ago 127);
    /// 0 for a page never dirtied since the predictor started (no evidence that it is ever written).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int RecencyScore(long page) =>
        (_everDirty[page >> 6] >> (int)(page & 63) & 1) == 0 ? 0 : RecencyOfAge[Age(page)];

    /// <summary>
    /// Rank for pages beyond the predictor's horizon (the budget fill), 1..255; 0 for a page never dirtied since the
    /// predictor started. Without a rewrite interval (written once, or <see cref="ChangePredictorOptions.UseRewriteInterval"/>
    /// off) it is <see cref="RecencyScore"/>. With one, the page's expected wait for its next write is taken as
    /// max(typical rewrite interval, rounds since the last write) — its rate while it keeps its habit, its age once it
    /// has gone quiet for longer than that — and scored 255 − round(16·log2(wait)): a page rewritten every 20 rounds
    /// outranks one rewritten every 200 however recently each was written, and a page silent for 1,000 rounds sinks
    /// whatever its past rate.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int FillScore(long page)
    {
        if ((_everDirty[page >> 6] >> (int)(page & 63) & 1) == 0) return 0;
        int recency = RecencyOfAge[Age(page)];  // 255 − 16·log2(age + 1)
        // 255 − max(interval, silence) on the log scale = the smaller of the interval's score and recency
        return !_useGap || _gap[page] == 0 ? recency : Math.Max(1, Math.Min(recency, 256 - _gap[page]));
    }

    /// <summary>The page's typical rewrite interval in rounds (a running mean on a log scale); null if it was written at most once.</summary>
    public double? RewriteIntervalRounds(long page)
    {
        CheckPage(page);
        return !_useGap || _gap[page] == 0 ? null : Math.Pow(2, (_gap[page] - 1) / 16.0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void LearnGap(long page, ushort rawGap)
    {
        int l = 255 - RecencyOfAge[Math.Clamp((int)rawGap, 1, MaxTrackedAge) - 1]; // 16·log2(gap)
        // first interval taken as it is; then a running mean with gain 1/4 (rounded toward the new value)
        int mean = _gap[page] - 1;
        int next = mean < 0 ? l : mean + (l - mean + (l >= mean ? 3 : -3)) / 4;
        _gap[page] = (byte)(Math.Clamp(next, 0, 254) + 1);
    }

    /// <summary>Bit i set = page 64·<paramref name="word"/> + i has been dirtied since the predictor started.</summary>
    internal ulong EverDirtyWord(int word) => _everDirty[word];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Age(long page) => Math.Min(MaxTrackedAge, (int)(ushort)((ushort)(Rounds - 1) - _lastDirty[page]));

    // Every MaxTrackedAge/2 rounds: pull stamps older than MaxTrackedAge forward, so a raw age stays below 1.5·MaxTrackedAge < 2^16 and never wraps.
    private void SaturateAges()
    {
        ushort now = (ushort)(Rounds - 1);
        ushort oldest = (ushort)(now - MaxTrackedAge);
        for (int w = 0; w < _everDirty.Length; w++)
        {
            for (ulong e = _everDirty[w]; e != 0; e &= e - 1)
            {
                long page = ((long)w << 6) + BitOperations.TrailingZeroCount(e);
                if ((ushort)(now - _lastDirty[page]) > MaxTrackedAge) _lastDirty[page] = oldest;
            }
        }
    }

    /// <summary>P(page is dirtied again before the next round), 0..255.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int NextRoundScore(long page)
    {
        int h = _history[page];
        if (h == 0) return _next.Quantized[0];
        int q = _next.Quantized[h & 0xFF];
        return _useResidual ? Math.Clamp(q + 2 * _residualNext[page], 0, 255) : q;
    }

    /// <summary>
    /// Hold score, 0..255: expected 1/d for d = rounds until the page is next dirtied (0 beyond <see cref="Horizon"/>).
    /// A page rewritten every round scores 255; one rewritten every 4th round ~64; a page written once, ~0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int SoonScore(long page)
    {
        int h = _history[page];
        if (h == 0) return _soon.Quantized[0];
        int q = _soon.Quantized[h & 0xFF];
        return _useResidual ? Math.Clamp(q + 2 * _residualSoon[page], 0, 255) : q;
    }

    /// <summary>Bit i set = page 64·<paramref name="word"/> + i has a non-zero history; pages not set score <see cref="IdleNextRoundScore"/> / <see cref="IdleSoonScore"/>.</summary>
    internal ulong ActiveWord(int word) => _active[word];

    /// <summary><see cref="NextRoundScore"/> of every page with history 0.</summary>
    internal int IdleNextRoundScore => _next.Quantized[0];

    /// <summary><see cref="SoonScore"/> of every page with history 0.</summary>
    internal int IdleSoonScore => _soon.Quantized[0];

    /// <summary>P(page dirtied again before the next round) as a probability.</summary>
    public double ProbabilityNextRound(long page)
    {
        CheckPage(page);
        return NextRoundScore(page) / 255.0;
    }

    /// <summary><see cref="SoonScore"/> as a fraction 0..1.</summary>
    public double SoonProbability(long page)
    {
        CheckPage(page);
        return SoonScore(page) / 255.0;
    }

    /// <summary>The page's last 16 rounds, bit i = dirty i rounds ago.</summary>
    public ushort History(long page)
    {
        CheckPage(page);
        return _history[page];
    }

    /// <summary>Shared estimate of P(dirty next round | last 8 rounds = <paramref name="context"/>).</summary>
    public double ContextProbabilityNextRound(byte context) => _next.Estimate(context);

    /// <summary>
    /// Sets in <paramref name="into"/> (cleared first) every page whose next-round probability is at least
    /// <paramref name="threshold"/>: the predictor's yes/no forecast, used to score it against baselines.
    /// </summary>
    public void PredictNextRound(DirtyBitmap into, double threshold)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (into.PageCount != PageCount)
            throw new ArgumentException($"bitmap covers {into.PageCount} pages, predictor covers {PageCount}", nameof(into));
        int cut = ThresholdToScore(threshold);
        Span<ulong> words = into.Words;
        bool idlePredicted = _next.Quantized[0] >= cut;
        for (int w = 0; w < words.Length; w++)
        {
            ulong active = _active[w];
            ulong result = idlePredicted ? ~active : 0;
            long first = (long)w << 6;
            while (active != 0)
            {
                int bit = BitOperations.TrailingZeroCount(active);
                active &= active - 1;
                if (NextRoundScore(first + bit) >= cut) result |= 1UL << bit;
            }
            words[w] = result;
        }
        int rem = (int)(PageCount & 63);
        if (rem != 0 && words.Length > 0) words[^1] &= (1UL << rem) - 1;
    }

    /// <summary>Converts a probability threshold to the 0..255 score scale (rounded up, so score ≥ cut ⇔ p ≥ threshold up to quantization).</summary>
    public static int ThresholdToScore(double threshold)
    {
        if (!(threshold >= 0 && threshold <= 1))
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "threshold must be a probability in [0, 1]");
        return (int)Math.Ceiling(threshold * 255.0 - 1e-9);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private sbyte Learn(sbyte residual, int error)
    {
        // Residual r in [-127, 127] stands for r/127.5 of probability; target = error/2 on that scale.
        int target = error / 2;
        return (sbyte)Math.Clamp(residual + (target - residual) / (1 << _residualShift), -127, 127);
    }

    private void CheckPage(long page)
    {
        if ((ulong)page >= (ulong)PageCount)
            throw new ArgumentOutOfRangeException(nameof(page), page, $"page outside the predictor's {PageCount} pages");
    }

    private static byte[] BuildRecency()
    {
        var table = new byte[ushort.MaxValue + 1];
        for (int a = 0; a < table.Length; a++)
            table[a] = (byte)Math.Clamp(255 - (int)Math.Round(16 * Math.Log2(a + 1.0)), 1, 255);
        return table;
    }

    private static byte[] BuildSoonValue()
    {
        var table = new byte[256];
        for (int b = 1; b < 256; b++)
        {
            int highest = 31 - BitOperations.LeadingZeroCount((uint)b); // most rounds ago = earliest after the decision
            int d = Horizon - highest;
            table[b] = (byte)Math.Round(255.0 / d);
        }
        return table;
    }
}
