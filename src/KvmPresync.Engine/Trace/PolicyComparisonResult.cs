using System.Text.Json.Serialization;

namespace KvmPresync.Trace;

/// <summary>Every policy run on one source by <see cref="PolicyComparison.Run"/>.</summary>
public sealed record PolicyComparisonResult
{
    /// <summary>What was replayed (the trace path, or the synthetic workload's name).</summary>
    public required string Source { get; init; }

    public required string Workload { get; init; }

    public required double LinkBitsPerSecond { get; init; }

    public required double WarmUpMs { get; init; }

    /// <summary>The measured period (null = to the end of the source).</summary>
    public double? DurationMs { get; init; }

    /// <summary>The saturation test on the none run's measured period.</summary>
    public required LinkSaturation Saturation { get; init; }

    /// <summary>Bytes of the oracle's future-write index (0 without an oracle run).</summary>
    public long OracleIndexBytes { get; init; }

    /// <summary>none first, then the policies in the order asked.</summary>
    public required IReadOnlyList<PolicyOutcome> Outcomes { get; init; }

    /// <summary>True when reductions were reported (the link is not saturated).</summary>
    [JsonIgnore]
    public bool ReductionsMeaningful => !Saturation.Saturated;
}
