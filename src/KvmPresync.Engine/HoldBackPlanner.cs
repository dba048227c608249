using KvmPresync.Core;
using System.Numerics;
using KvmPresync.Memory;

namespace KvmPresync.Engine;

/// <summary>
/// Decides, each round, which pending pages to send and which to hold back.
/// </summary>
/// <remarks>
/// <para>Every pending page gets a rank key 0..511 (higher = more worth holding):
/// 256 + score when the predictor's score (soon by default) is at least the threshold — a rewrite expected within the
/// predictor's horizon; otherwise, with <see cref="HoldBackOptions.FillBudgetByRecency"/>, the page's recency
/// (1..255, most recently written highest; 0 if never dirtied since the predictor started); without it, the score.</para>
/// <para>Hold-back: pages with key ≥ 256 (or ≥ 1 when filling by recency) are candidates; the highest keys are held
/// first until the held bytes would exceed the launch budget (ties broken by page order), so what the predictor holds
/// can always be sent within the launch-time target.</para>
/// <para>Window: of the pages not held, the lowest keys are sent first — the pages least likely to change again —
/// until the round's window is full; the rest are deferred (stay pending).</para>
/// <para>Nothing is removed from the pending set here: the caller clears a page when it has actually been sent.
/// Ranking uses 512-level histograms (two or three passes over the pending words, no sort). Pages without a per-page
/// key (history 0 and, when filling by recency, never dirtied) all share one key, so they are handled a 64-page word
/// at a time unless they straddle a cut.</para>
/// </remarks>
public sealed class HoldBackPlanner
{
    /// <summary>Rank keys at or above this are hold candidates by the predictor's score (256 + score).</summary>
    public const int ScoredTier = 256;

    private const int Levels = 512;

    private readonly long[] _histogram = new long[Levels];
    private ushort[] _scoreBuffer = new ushort[1024]; // keys of pending per-page-ranked pages, in page order (pass 1 → passes 2, 3)
    private readonly int _thresholdScore;

    public HoldBackPlanner(HoldBackOptions? options = null)
    {
        Options = options ?? new HoldBackOptions();
        Options.Validate();
        _thresholdScore = ChangePredictor.ThresholdToScore(Options.Threshold);
    }

    public HoldBackOptions Options { get; }

    /// <summary>
    /// Plans one round. <paramref name="send"/> and <paramref name="held"/> are overwritten with the pages to send now
    /// and the pages held back; both are subsets of <paramref name="pending"/>. Without a predictor nothing is held
    /// and the window is filled in page order. <paramref name="windowBytes"/> = long.MaxValue means unlimited.
    /// </summary>
    public RoundPlan Plan(
        DirtyBitmap pending,
        ChangePredictor? predictor,
        LaunchBudget budget,
        long windowBytes,
        PageCost cost,
        DirtyBitmap send,
        DirtyBitmap held)
    {
        ArgumentNullException.ThrowIfNull(pending);
        ArgumentNullException.ThrowIfNull(cost);
        ArgumentNullException.ThrowIfNull(send);
        ArgumentNullException.ThrowIfNull(held);
        ArgumentOutOfRangeException.ThrowIfNegative(windowBytes);
        if (send.PageCount != pending.PageCount || held.PageCount != pending.PageCount)
            throw new ArgumentException($"send/held bitmaps must cover the pending set's {pending.PageCount} pages");
        if (predictor is not null && predictor.PageCount != pending.PageCount)
            throw new ArgumentException($"predictor covers {predictor.PageCount} pages, pending set {pending.PageCount}", nameof(predictor));

        var scores = new Scores(predictor, Options, _thresholdScore);
        ReadOnlySpan<ulong> pendingWords = pending.ReadOnlyWords;
        Span<ulong> heldWords = held.Words;
        Span<ulong> sendWords = send.Words;
        long[] hist = _histogram;
        int threshold = scores.MinHoldKey;
        bool predicting = predictor is not null;

        // Pass 1: total pending; bytes per score among hold candidates.
        Array.Clear(hist);
        long pendingPages = 0, pendingBytes = 0;
        int scored = 0;
        for (int w = 0; w < pendingWords.Length; w++)
        {
            ulong p = pendingWords[w];
            if (p == 0) continue;
            pendingPages += BitOperations.PopCount(p);
            ulong active = scores.Active(w) & p;
            ulong idle = p & ~active;
            if (idle != 0)
            {
                long c = cost.OfWord(w, idle);
                pendingBytes += c;
                if (predicting && scores.Idle >= threshold) hist[scores.Idle] += c;
            }
            for (ulong a = active; a != 0; a &= a - 1)
            {
                long page = ((long)w << 6) + BitOperations.TrailingZeroCount(a);
                long c = cost.Of(page);
                pendingBytes += c;
                int s = scores.Of(page);
                if (scored == _scoreBuffer.Length) Array.Resize(ref _scoreBuffer, (int)Math.Min(Array.MaxLength, 2L * scored));
                _scoreBuffer[scored++] = (ushort)s;
                if (s >= threshold) hist[s] += c;
            }
        }
        ushort[] scoreOf = _scoreBuffer;

        // Hold cut: levels above holdCut are held whole; at holdCut, pages in page order while they fit.
        long holdRoom = budget.Bytes;
        int holdCut = -1;
        if (predicting)
        {
            for (int level = Levels - 1; level >= threshold; level--)
            {
                if (hist[level] <= holdRoom) { holdRoom -= hist[level]; continue; }
                holdCut = level;
                break;
            }
        }

        // Pass 2: mark held pages; bytes per score among the rest.
        Array.Clear(hist);
        long heldPages = 0, heldBytes = 0, restPages = 0, restBytes = 0;
        int next = 0;
        for (int w = 0; w < pendingWords.Length; w++)
        {
            ulong p = pendingWords[w];
            heldWords[w] = 0;
            if (p == 0) continue;
            ulong active = scores.Active(w) & p;
            ulong idle = p & ~active;
            ulong perPage = active;
            if (idle != 0)
            {
                int s = scores.Idle;
                bool candidate = predicting && s >= threshold;
                if (candidate && s == holdCut)
                {
                    perPage = p; // the idle pages straddle the cut: decide page by page, in page order
                }
                else if (candidate)
                {
                    heldWords[w] |= idle;
                    heldPages += BitOperations.PopCount(idle);
                    heldBytes += cost.OfWord(w, idle);
                }
                else
                {
                    long c = cost.OfWord(w, idle);
                    hist[s] += c;
                    restPages += BitOperations.PopCount(idle);
                    restBytes += c;
                }
            }
            for (ulong a = perPage; a != 0; a &= a - 1)
            {
                int bit = BitOperations.TrailingZeroCount(a);
                long page = ((long)w << 6) + bit;
                long c = cost.Of(page);
                int s = (active >> bit & 1) != 0 ? scoreOf[next++] : scores.Idle;
                bool hold = predicting && s >= threshold && (s > holdCut || (s == holdCut && c <= holdRoom));
                if (hold)
                {
                    if (s == holdCut) holdRoom -= c;
                    heldWords[w] |= 1UL << bit;
                    heldPages++;
                    heldBytes += c;
                }
                else
                {
                    hist[s] += c;
                    restPages++;
                    restBytes += c;
                }
            }
        }

        if (restBytes <= windowBytes)
        {
            for (int w = 0; w < pendingWords.Length; w++) sendWords[w] = pendingWords[w] & ~heldWords[w];
            return new RoundPlan(pendingPages, pendingBytes, heldPages, heldBytes, restPages, restBytes, 0, 0);
        }

        // Window cut: levels below sendCut are sent whole; at sendCut, pages in page order while they fit.
        long sendRoom = windowBytes;
        int sendCut = Levels;
        for (int level = 0; level < Levels; level++)
        {
            if (hist[level] <= sendRoom) { sendRoom -= hist[level]; continue; }
            sendCut = level;
            break;
        }

        // Pass 3: mark sent pages.
        long sendPages = 0, sendBytes = 0;
        next = 0;
        for (int w = 0; w < pendingWords.Length; w++)
        {
            ulong p = pendingWords[w];
            sendWords[w] = 0;
            if (p == 0) continue;
            ulong heldHere = heldWords[w];
            ulong active = scores.Active(w) & p; // all pending active pages, to stay in step with the score buffer
            ulong idle = p & ~active & ~heldHere;
            ulong perPage = active;
            if (idle != 0)
            {
                if (scores.Idle == sendCut) perPage |= idle;
                else if (scores.Idle < sendCut)
                {
                    sendWords[w] |= idle;
                    sendPages += BitOperations.PopCount(idle);
                    sendBytes += cost.OfWord(w, idle);
                }
            }
            for (ulong a = perPage; a != 0; a &= a - 1)
            {
                int bit = BitOperations.TrailingZeroCount(a);
                long page = ((long)w << 6) + bit;
                int s = (active >> bit & 1) != 0 ? scoreOf[next++] : scores.Idle;
                if ((heldHere >> bit & 1) != 0 || s > sendCut) continue;
                long c = cost.Of(page);
                if (s == sendCut)
                {
                    if (c > sendRoom) continue;
                    sendRoom -= c;
                }
                sendWords[w] |= 1UL << bit;
                sendPages++;
                sendBytes += c;
            }
        }
        return new RoundPlan(pendingPages, pendingBytes, heldPages, heldBytes, sendPages, sendBytes,
            restPages - sendPages, restBytes - sendBytes);
    }

    /// <summary>The rank key of pages (0 for every page without a predictor); see the class remarks.</summary>
    private readonly struct Scores
    {
        private readonly ChangePredictor? _predictor;
        private readonly bool _soon;
        private readonly bool _recency;
        private readonly int _threshold;

        public Scores(ChangePredictor? predictor, HoldBackOptions options, int threshold)
        {
            _predictor = predictor;
            _soon = options.Ranking == HoldRanking.Soon;
            _recency = options.FillBudgetByRecency;
            _threshold = threshold;
            MinHoldKey = _recency ? 1 : ScoredTier;
            Idle = predictor is null ? 0 : KeyOf(_soon ? predictor.IdleSoonScore : predictor.IdleNextRoundScore, 0);
        }

        /// <summary>Lowest key that is a hold candidate.</summary>
        public int MinHoldKey { get; }

        /// <summary>Key shared by every page not in <see cref="Active"/>.</summary>
        public int Idle { get; }

        /// <summary>Pages of word <paramref name="word"/> with a key of their own.</summary>
        public ulong Active(int word) => _predictor is null ? 0
            : _recency ? _predictor.ActiveWord(word) | _predictor.EverDirtyWord(word) : _predictor.ActiveWord(word);

        public int Of(long page)
        {
            int score = _soon ? _predictor!.SoonScore(page) : _predictor!.NextRoundScore(page);
            return score >= _threshold ? ScoredTier + score : _recency ? _predictor.RecencyScore(page) : score;
        }

        private int KeyOf(int score, int recency) =>
            score >= _threshold ? ScoredTier + score : _recency ? recency : score;
    }
}
