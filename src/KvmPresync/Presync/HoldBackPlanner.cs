using KvmPresync.Memory;

namespace KvmPresync.Presync;

/// <summary>
/// Decides, each round, which pending pages to send and which to hold back.
/// </summary>
/// <remarks>
/// <para>Hold-back: pending pages whose predictor score is at least the threshold are candidates; the highest
/// scores are held first until the held bytes would exceed the launch budget (ties broken by page order), so
/// what the predictor holds can always be sent within the launch-time target.</para>
/// <para>Window: of the pages not held, the lowest scores are sent first — the pages least likely to change
/// again — until the round's window is full; the rest are deferred (stay pending).</para>
/// <para>Nothing is removed from the pending set here: the caller clears a page when it has actually been sent.
/// Ranking uses 256-level histograms (two or three passes over the pending pages, no sort).</para>
/// </remarks>
public sealed class HoldBackPlanner
{
    private readonly long[] _histogram = new long[256];
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

        send.Clear();
        held.Clear();
        long[] hist = _histogram;

        // Pass 1: bytes per score among hold candidates; total pending.
        Array.Clear(hist);
        long pendingPages = 0, pendingBytes = 0;
        bool predicting = predictor is not null;
        foreach (long page in pending)
        {
            long c = cost.Of(page);
            pendingPages++;
            pendingBytes += c;
            if (!predicting) continue;
            int s = Score(predictor!, page);
            if (s >= _thresholdScore) hist[s] += c;
        }

        // Hold cut: levels above holdCut are held whole; at holdCut, pages in page order while they fit.
        long holdRoom = budget.Bytes;
        int holdCut = -1;
        if (predicting)
        {
            for (int level = 255; level >= _thresholdScore; level--)
            {
                if (hist[level] <= holdRoom) { holdRoom -= hist[level]; continue; }
                holdCut = level;
                break;
            }
        }

        // Pass 2: mark held pages; bytes per score among the rest.
        Array.Clear(hist);
        long heldPages = 0, heldBytes = 0, restPages = 0, restBytes = 0;
        foreach (long page in pending)
        {
            long c = cost.Of(page);
            int s = predicting ? Score(predictor!, page) : 0;
            bool hold = predicting && s >= _thresholdScore && (s > holdCut || (s == holdCut && c <= holdRoom));
            if (hold)
            {
                if (s == holdCut) holdRoom -= c;
                held.Set(page);
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

        if (restBytes <= windowBytes)
        {
            send.CopyFrom(pending);
            send.AndNot(held);
            return new RoundPlan(pendingPages, pendingBytes, heldPages, heldBytes, restPages, restBytes, 0, 0);
        }

        // Window cut: levels below sendCut are sent whole; at sendCut, pages in page order while they fit.
        long sendRoom = windowBytes;
        int sendCut = 256;
        for (int level = 0; level < 256; level++)
        {
            if (hist[level] <= sendRoom) { sendRoom -= hist[level]; continue; }
            sendCut = level;
            break;
        }

        // Pass 3: mark sent pages.
        long sendPages = 0, sendBytes = 0;
        foreach (long page in pending)
        {
            if (predicting && held[page]) continue;
            int s = predicting ? Score(predictor!, page) : 0;
            if (s > sendCut) continue;
            long c = cost.Of(page);
            if (s == sendCut)
            {
                if (c > sendRoom) continue;
                sendRoom -= c;
            }
            send.Set(page);
            sendPages++;
            sendBytes += c;
        }
        return new RoundPlan(pendingPages, pendingBytes, heldPages, heldBytes, sendPages, sendBytes,
            restPages - sendPages, restBytes - sendBytes);
    }

    private int Score(ChangePredictor predictor, long page) =>
        Options.Ranking == HoldRanking.Soon ? predictor.SoonScore(page) : predictor.NextRoundScore(page);
}
