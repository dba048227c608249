using System.Diagnostics;
using KvmPresync.Core;

namespace KvmPresync.Migration;

/// <summary>The guest's work counter and vCPU figures at one moment of a clock.</summary>
public readonly record struct GuestSample(TimeSpan At, long Progress, GuestRunStats? Run)
{
    public static GuestSample Of(IMigrationSource source, TimeSpan at) =>
        new(at, source.ProgressTotal, (source as IGuestRunStatsSource)?.RunStats);
}

/// <summary>
/// The guest's work over one window: its length, the work units it completed (its own counter:
/// <see cref="IMigrationSource.ProgressTotal"/>), and how its vCPU thread spent the window (<see cref="GuestRunStats"/>,
/// null when the source cannot tell).
/// </summary>
public sealed record GuestWindow(double Seconds, long Units, GuestRunStats? Run)
{
    /// <summary>Work units per second.</summary>
    public double Rate => Seconds > 0 ? Units / Seconds : 0;

    /// <summary>Share of the window the guest was not pace-sleeping (working, or runnable and waiting for a CPU), %.</summary>
    public double? BusyPercent => Run is { } r && Seconds > 0 ? Math.Clamp(100 - r.PaceIdleNs / (Seconds * 1e7), 0, 100) : null;

    /// <summary>Share of the window the vCPU thread ran on a host CPU, %.</summary>
    public double? OnCpuPercent => Run is { } r && Seconds > 0 ? r.OnCpuNs / (Seconds * 1e7) : null;

    /// <summary>vCPU time on a host CPU per work unit, µs: grows when each unit of work costs more (write-protect faults).</summary>
    public double? OnCpuUsPerUnit => Run is { } r && Units > 0 ? r.OnCpuNs / 1e3 / Units : null;

    /// <summary>Time the runnable vCPU thread waited for a host CPU, ms per second of the window (host-CPU contention).</summary>
    public double? RunQueueWaitMsPerSecond => Run is { } r && Seconds > 0 ? r.RunQueueWaitNs / 1e6 / Seconds : null;

    public static GuestWindow Between(GuestSample start, GuestSample end) =>
        new((end.At - start.At).TotalSeconds, end.Progress - start.Progress,
            start.Run is { } a && end.Run is { } b ? b - a : null);

    /// <summary>
    /// Lets the guest run for <paramref name="length"/> and measures its work over that window: the caller sends nothing
    /// meanwhile, so this is the guest's undisturbed rate (the baseline of <see cref="GuestSlowdown"/>).
    /// </summary>
    public static async Task<GuestWindow> MeasureAsync(IMigrationSource source, TimeSpan length, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        var clock = Stopwatch.StartNew();
        GuestSample start = GuestSample.Of(source, clock.Elapsed);
        // the timer may fire a little before the window's own clock has run the whole length: wait out the rest
        for (TimeSpan left = length; left > TimeSpan.Zero; left = length - clock.Elapsed)
            await Task.Delay(left < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : left, cancellationToken).ConfigureAwait(false);
        return Between(start, GuestSample.Of(source, clock.Elapsed));
    }
}

/// <summary>
/// Guest slowdown during presync: the guest's work rate during the sync period (connect to launch) against its rate
/// over a window just before presync started, with nothing sent (<see cref="PresyncOptions.Baseline"/>), on the same
/// guest in the same process: <c>slowdown % = (1 − presync rate / baseline rate) × 100</c>. Negative when the guest did
/// more work during presync (a bursty workload's schedule, or counting noise: see <see cref="CountingUncertaintyPercent"/>).
/// </summary>
public sealed record GuestSlowdown(GuestWindow Baseline, GuestWindow Presync)
{
    /// <summary>The slowdown, %; null when the baseline did no work (nothing to compare with).</summary>
    public double? Percent => Baseline.Units > 0 && Baseline.Seconds > 0 && Presync.Seconds > 0 ? (1 - Presync.Rate / Baseline.Rate) * 100 : null;

    /// <summary>
    /// How far whole work units can move the figure: a window's count is off by up to one unit at each end, so each rate
    /// is uncertain by 1/units of itself; the ratio by the sum (percentage points).
    /// </summary>
    public double? CountingUncertaintyPercent => Percent is null ? null
        : Presync.Rate / Baseline.Rate * (1.0 / Baseline.Units + 1.0 / Math.Max(1, Presync.Units)) * 100;

    /// <summary>The figure when both windows were measured; null without a baseline.</summary>
    public static GuestSlowdown? Of(GuestWindow? baseline, GuestWindow? presync) =>
        baseline is not null && presync is not null ? new GuestSlowdown(baseline, presync) : null;
}
