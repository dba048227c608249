using KvmPresync.Core;
using System.Numerics;
using KvmPresync.Memory;

namespace KvmPresync.Engine;

/// <summary>
/// Decides, each round, which pending pages to send and which to hold back.
/// </summary>
/// <remarks>
/// <para>Every pending page gets a rank key 0..511 (higher = more worth holding) from an <see cref="IHoldRanking"/>: the
/// predictor's (<see cref="PredictorRanking"/>, used by predict) or the future-knowledge bound's
/// (<see cref="OracleRanking"/>, simulation only). The predictor's key is 256 + score when the predictor's score (soon by default) is at least the threshold — a rewrite expected within the
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

    public HoldBackPlanner(HoldBackOptions? options = null)
    {
        Options = options ?? new HoldBackOptions();
    }

    public HoldBackOptions Options { get; }

    /// <summary>
    /// Plans one round by the predictor's ranking (<see cref="PredictorRanking"/> with <see cref="Options"/>).
    /// <paramref name="send"/> and <paramref name="held"/> are overwritten with the pages to send now and the pages held
    /// back; both are subsets of <paramref name="pending"/>. Without a predictor nothing is held and the window is filled
    /// in page order. <paramref name="windowBytes"/> = long.MaxValue means unlimited.
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
        if (predictor is not null && predictor.PageCount != pending.PageCount)
            throw new ArgumentException($"predictor covers {predictor.PageCount} pages, pending set {pending.PageCount}", nameof(predictor));
        return predictor is null
            ? Plan(pending, new Unranked(), budget, windowBytes, cost, send, held)
            : Plan(pending, new PredictorRanking(predictor, Options), budget, windowBytes, cost, send, held);
    }

    /// <summary>
    /// Plans one round by <paramref name="ranking"/>: holds the highest keys within <paramref name="budget"/>, sends the
    /// lowest of the rest within <paramref name="windowBytes"/>. Pass a struct ranking (the loop is specialized for it).
    /// </summary>
    public RoundPlan Plan<TRanking>(
        DirtyBitmap pending,
        TRanking ranking,
        LaunchBudget budget,
        long windowBytes,
        PageCost cost,
        DirtyBitmap send,
        DirtyBitmap held)
        where TRanking : IHoldRanking
    {
        ArgumentNullException.ThrowIfNull(pending);
        ArgumentNullException.ThrowIfNull(ranking);
        ArgumentNullException.ThrowIfNull(cost);
        ArgumentNullException.ThrowIfNull(send);
        ArgumentNullException.ThrowIfNull(held);
        ArgumentOutOfRangeException.ThrowIfNegative(windowBytes);
        if (send.PageCount != pending.PageCount || held.PageCount != pending.PageCount)
            throw new ArgumentException($"send/held bitmaps must cover the pending set's {pending.PageCount} pages");

        ReadOnlySpan<ulong> pendingWords = pending.ReadOnlyWords;
        Span<ulong> heldWords = held.Words;
        Span<ulong> sendWords = send.Words;
        long[] hist = _histogram;
        int threshold = ranking.MinHoldKey;
        bool predicting = ranking.Holds;

        // Pass 1: total pending; bytes per score among hold candidates.
        Array.Clear(hist);
        long pendingPages = 0, pendingBytes = 0;
        int scored = 0;
        for (int w = 0; w < pendingWords.Length; w++)
        {
            ulong p = pendingWords[w];
            if (p == 0) continue;
            pendingPages += BitOperations.PopCount(p);
            ulong active = ranking.OwnKeyPages(w) & p;
            ulong idle = p & ~active;
            if (idle != 0)
            {
                long c = cost.OfWord(w, idle);
                pendingBytes += c;
                if (predicting && ranking.IdleKey >= threshold) hist[ranking.IdleKey] += c;
            }
            for (ulong a = active; a != 0; a &= a - 1)
            {
                long page = ((long)w << 6) + BitOperations.TrailingZeroCount(a);
                long c = cost.Of(page);
                pendingBytes += c;
                int s = ranking.KeyOf(page);
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
            ulong active = ranking.OwnKeyPages(w) & p;
            ulong idle = p & ~active;
            ulong perPage = active;
            if (idle != 0)
            {
                int s = ranking.IdleKey;
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
                int s = (active >> bit & 1) != 0 ? scoreOf[next++] : ranking.IdleKey;
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
            ulong active = ranking.OwnKeyPages(w) & p; // all pending active pages, to stay in step with the score buffer
            ulong idle = p & ~active & ~heldHere;
            ulong perPage = active;
            if (idle != 0)
            {
                if (ranking.IdleKey == sendCut) perPage |= idle;
                else if (ranking.IdleKey < sendCut)
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
                int s = (active >> bit & 1) != 0 ? scoreOf[next++] : ranking.IdleKey;
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

    /// <summary>No ranking: nothing is held, every page has key 0 (the window is filled in page order).</summary>
    private readonly struct Unranked : IHoldRanking
    {
        public bool Holds => false;

        public int MinHoldKey => ScoredTier;

        public int IdleKey => 0;

        public ulong OwnKeyPages(int word) => 0;

        public int KeyOf(long page) => 0;
    }
}
