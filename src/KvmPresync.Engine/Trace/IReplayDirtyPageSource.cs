using KvmPresync.Core;
using KvmPresync.Engine;

namespace KvmPresync.Trace;

/// <summary>
/// A dirty-page source whose clock the caller drives (trace replay, synthetic workload): the simulator advances
/// time and harvests, instead of sleeping. Intervals ending at or before the clock are harvestable.
/// </summary>
public interface IReplayDirtyPageSource : IDirtyPageSource
{
    /// <summary>Workload name (from the trace header or the synthetic spec).</summary>
    string Workload { get; }

    /// <summary>Granularity of the recorded intervals: rounds shorter than this see no new pages.</summary>
    TimeSpan Interval { get; }

    /// <summary>Current clock; <see cref="IDirtyPageSource.Harvest"/> reports this as the harvest time.</summary>
    TimeSpan Now { get; }

    /// <summary>True when every interval has been harvested: no harvest will report anything again.</summary>
    bool Exhausted { get; }

    /// <summary>Moves the clock forward to <paramref name="time"/> (never backwards).</summary>
    void AdvanceTo(TimeSpan time);
}
