using KvmPresync.Core;
namespace KvmPresync.Engine;

/// <summary>Which predictor score ranks pending pages for hold-back.</summary>
public enum HoldRanking
{
    /// <summary>E[1/d], d = rounds until the next rewrite (default): values a page by how soon holding it pays off.</summary>
    Soon = 1,

    /// <summary>P(dirty again before the next round): the paper's one-step probability.</summary>
    NextRound = 2,
}

/// <summary>Tuning of <see cref="HoldBackPlanner"/>.</summary>
public sealed record HoldBackOptions
{
    /// <summary>
    /// A pending page is a hold-back candidate when its score (as a fraction) is at least this. The default 1/8 holds a
    /// page expected to be rewritten within the predictor's 8-round horizon (soon score ≥ 1/8).
    /// </summary>
    public double Threshold { get; init => field = OptionGuard.Require(value, value >= 0 && value <= 1, nameof(HoldBackOptions), "must be a probability in [0, 1]"); } = 0.125;

    public HoldRanking Ranking { get; init => field = OptionGuard.Require(value, value is HoldRanking.Soon or HoldRanking.NextRound, nameof(HoldBackOptions), "must be Soon or NextRound"); } = HoldRanking.Soon;

    /// <summary>
    /// Whether budget left over after the pages above <see cref="Threshold"/> is filled with other pending pages that were
    /// dirtied since the predictor started, most recently written first (<see cref="ChangePredictor.RecencyScore"/>).
    /// Holding a page costs no wire bytes — it is sent once, when released or at launch — so unused budget is an option
    /// given away for nothing: a held page that is rewritten again (an autosave, an editor's burst, a frame slot on an
    /// irregular clock) saves a send. Default true.
    /// </summary>
    public bool FillBudgetByRecency { get; init; } = true;
}
