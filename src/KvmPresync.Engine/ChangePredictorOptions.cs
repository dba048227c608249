using KvmPresync.Core;
namespace KvmPresync.Engine;

/// <summary>Tuning of <see cref="ChangePredictor"/>. Defaults are documented in docs/POLICIES.md.</summary>
public sealed record ChangePredictorOptions
{
    /// <summary>Per-round decay λ of the shared context table's counts (0 &lt; λ ≤ 1). 0.97 ≈ a 33-round memory.</summary>
    public double Decay { get; init => field = OptionGuard.Require(value, value > 0 && value <= 1, nameof(ChangePredictorOptions), "must be in (0, 1]"); } = 0.97;

    /// <summary>Pseudo-count k of the prior in each context's estimate: (S + k·prior) / (N + k).</summary>
    public double PriorWeight { get; init => field = OptionGuard.Require(value, value > 0 && !double.IsInfinity(value), nameof(ChangePredictorOptions), "must be a positive, finite number"); } = 1.0;

    /// <summary>Whether the per-page residual (how far this page's outcomes run above or below its context's) is learnt and applied.</summary>
    public bool UsePageResidual { get; init; } = true;

    /// <summary>EMA gain of the per-page residual as a right shift: r += (target − r) / 2^shift. 2 = gain 1/4.</summary>
    public int ResidualShift { get; init => field = OptionGuard.Require(value, value is >= 0 and <= 7, nameof(ChangePredictorOptions), "must be in 0..7"); } = 2;

    /// <summary>
    /// Whether each page's typical rewrite interval is learnt (one byte per page) and ranks the budget fill beyond the
    /// horizon (<see cref="ChangePredictor.FillScore"/>) instead of recency alone.
    /// </summary>
    public bool UseRewriteInterval { get; init; } = true;

    /// <summary>
    /// Whether the first update is taken as a backlog (everything written before observation began: KVM's first dirty
    /// log since boot, a capture's first scan) rather than as one round's writes: it feeds the histories, but its pages
    /// are not stamped nor marked "ever dirty", so they are not held to fill the budget on that evidence alone.
    /// </summary>
    public bool FirstHarvestIsBacklog { get; init; } = true;
}
