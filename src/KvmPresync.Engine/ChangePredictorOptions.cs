using KvmPresync.Core;
namespace KvmPresync.Engine;

/// <summary>Tuning of <see cref="ChangePredictor"/>. Defaults are documented in docs/POLICIES.md.</summary>
public sealed record ChangePredictorOptions
{
    /// <summary>Per-round decay λ of the shared context table's counts (0 &lt; λ ≤ 1). 0.97 ≈ a 33-round memory.</summary>
    public double Decay { get; init; } = 0.97;

    /// <summary>Pseudo-count k of the prior in each context's estimate: (S + k·prior) / (N + k).</summary>
    public double PriorWeight { get; init; } = 1.0;

    /// <summary>Whether the per-page residual (how far this page's outcomes run above or below its context's) is learnt and applied.</summary>
    public bool UsePageResidual { get; init; } = true;

    /// <summary>EMA gain of the per-page residual as a right shift: r += (target − r) / 2^shift. 2 = gain 1/4.</summary>
    public int ResidualShift { get; init; } = 2;

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

    public void Validate()
    {
        if (!(Decay > 0 && Decay <= 1))
            throw new ArgumentOutOfRangeException(nameof(Decay), Decay, "predictor decay must be in (0, 1]");
        if (!(PriorWeight > 0) || double.IsInfinity(PriorWeight))
            throw new ArgumentOutOfRangeException(nameof(PriorWeight), PriorWeight, "prior weight must be a positive, finite number");
        if (ResidualShift is < 0 or > 7)
            throw new ArgumentOutOfRangeException(nameof(ResidualShift), ResidualShift, "residual shift must be in 0..7");
    }
}
