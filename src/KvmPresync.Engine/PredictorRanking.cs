namespace KvmPresync.Engine;

/// <summary>
/// The predictor's hold ranking (<see cref="HoldBackPlanner"/>'s default): 256 + score when the predictor's score (soon
/// by default) is at least the threshold — a rewrite expected within the horizon; otherwise, with
/// <see cref="HoldBackOptions.FillBudgetByRecency"/>, the page's recency (1..255; 0 if never dirtied since the predictor
/// started); without it, the score.
/// </summary>
public readonly struct PredictorRanking : IHoldRanking
{
    private readonly ChangePredictor _predictor;
    private readonly bool _soon;
    private readonly bool _recency;
    private readonly int _threshold;

    public PredictorRanking(ChangePredictor predictor, HoldBackOptions options)
    {
        ArgumentNullException.ThrowIfNull(predictor);
        ArgumentNullException.ThrowIfNull(options);
        _predictor = predictor;
        _soon = options.Ranking == HoldRanking.Soon;
        _recency = options.FillBudgetByRecency;
        _threshold = ChangePredictor.ThresholdToScore(options.Threshold);
        MinHoldKey = _recency ? 1 : HoldBackPlanner.ScoredTier;
        IdleKey = KeyOf(_soon ? predictor.IdleSoonScore : predictor.IdleNextRoundScore, 0);
    }

    public bool Holds => true;

    public int MinHoldKey { get; }

    public int IdleKey { get; }

    public ulong OwnKeyPages(int word) =>
        _recency ? _predictor.ActiveWord(word) | _predictor.EverDirtyWord(word) : _predictor.ActiveWord(word);

    public int KeyOf(long page)
    {
        int score = _soon ? _predictor.SoonScore(page) : _predictor.NextRoundScore(page);
        return score >= _threshold ? HoldBackPlanner.ScoredTier + score : _recency ? _predictor.FillScore(page) : score;
    }

    private int KeyOf(int score, int recency) =>
        score >= _threshold ? HoldBackPlanner.ScoredTier + score : _recency ? recency : score;
}
