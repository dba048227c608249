using KvmPresync.Engine;

namespace KvmPresync.Trace;

/// <summary>
/// Runs several policies on one source with the same options and reports each one's reduction against <c>none</c> and
/// its fraction of the future-knowledge bound's (<see cref="SyncPolicy.Oracle"/>) reduction:
/// reduction(p) = sync bytes(none) − sync bytes(p) over the measured period; fraction(p) = reduction(p) / reduction(oracle).
/// A saturated link (<see cref="LinkSaturation"/>) reports neither.
/// </summary>
public static class PolicyComparison
{
    /// <summary>none, predict, predict+slowstart, oracle: what <c>simulate --policy all</c> runs.</summary>
    public static readonly IReadOnlyList<SyncPolicy> All = [SyncPolicy.None, SyncPolicy.Predict, SyncPolicy.PredictSlowStart, SyncPolicy.Oracle];

    /// <param name="open">Opens a fresh replay of the source (called once per policy, twice more for the oracle's index;
    /// each is disposed when it is IDisposable).</param>
    /// <param name="policies">Policies to run; none is always run (it is the baseline) and comes first.</param>
    /// <param name="options">Everything but the policy, the same for every run.</param>
    /// <param name="sourceName">Names the source in the result (default: the workload).</param>
    public static PolicyComparisonResult Run(Func<IReplayDirtyPageSource> open, IEnumerable<SyncPolicy> policies, SimulationOptions options, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentNullException.ThrowIfNull(options);
        var order = new List<SyncPolicy> { SyncPolicy.None };
        foreach (SyncPolicy p in policies)
            if (!order.Contains(p)) order.Add(p);

        FutureWrites? future = order.Contains(SyncPolicy.Oracle) ? FutureWrites.For(open, options) : null;
        var results = new List<SimulationResult>(order.Count);
        foreach (SyncPolicy policy in order)
        {
            IReplayDirtyPageSource source = open();
            try
            {
                results.Add(Simulator.Run(source, options with { Policy = policy }, policy == SyncPolicy.Oracle ? future : null));
            }
            finally
            {
                (source as IDisposable)?.Dispose();
            }
        }

        SimulationResult none = results[0];
        LinkSaturation saturation = LinkSaturation.Measure(none, options.HeaderBytesPerPage);
        long? oracleReduction = future is null ? null : none.SyncBytes - results[order.IndexOf(SyncPolicy.Oracle)].SyncBytes;
        var outcomes = new List<PolicyOutcome>(order.Count);
        foreach (SimulationResult r in results)
        {
            long reduction = none.SyncBytes - r.SyncBytes;
            bool meaningful = !saturation.Saturated;
            outcomes.Add(new PolicyOutcome
            {
                Policy = r.Policy,
                SyncBytes = r.SyncBytes,
                LaunchBytes = r.LaunchBytes,
                LaunchBudgetBytes = r.LaunchBudgetBytes,
                ReductionBytes = meaningful ? reduction : null,
                ReductionPercent = meaningful && none.SyncBytes > 0 ? 100.0 * reduction / none.SyncBytes : null,
                OracleFractionPercent = meaningful && oracleReduction > 0 ? 100.0 * reduction / oracleReduction.Value : null,
                Result = r,
            });
        }
        return new PolicyComparisonResult
        {
            Source = sourceName ?? none.Workload,
            Workload = none.Workload,
            LinkBitsPerSecond = options.LinkBitsPerSecond,
            WarmUpMs = options.WarmUp.TotalMilliseconds,
            DurationMs = options.Duration?.TotalMilliseconds,
            Saturation = saturation,
            OracleIndexBytes = future?.MemoryBytes ?? 0,
            Outcomes = outcomes,
        };
    }
}
