namespace KvmPresync.Trace;

/// <summary>One policy's row of a <see cref="PolicyComparison"/>: its bytes, and its reduction against <c>none</c> and
/// against the oracle's (null where not meaningful: a saturated link, no oracle run, nothing to reduce).</summary>
public sealed record PolicyOutcome
{
    /// <summary>Policy name as the CLI spells it.</summary>
    public required string Policy { get; init; }

    /// <summary>Wire bytes sent in the measured period.</summary>
    public required long SyncBytes { get; init; }

    /// <summary>Wire bytes pending after the last sync round (held + deferred).</summary>
    public required long LaunchBytes { get; init; }

    public required long LaunchBudgetBytes { get; init; }

    public bool LaunchWithinBudget => LaunchBytes <= LaunchBudgetBytes;

    /// <summary>none's sync bytes − this policy's; null on a saturated link.</summary>
    public long? ReductionBytes { get; init; }

    /// <summary><see cref="ReductionBytes"/> / none's sync bytes × 100; null on a saturated link or when none sent nothing.</summary>
    public double? ReductionPercent { get; init; }

    /// <summary><see cref="ReductionBytes"/> / the oracle's × 100; null on a saturated link, without an oracle run, or
    /// when the oracle reduces nothing.</summary>
    public double? OracleFractionPercent { get; init; }

    /// <summary>The whole simulation (per-round detail).</summary>
    public required SimulationResult Result { get; init; }
}
