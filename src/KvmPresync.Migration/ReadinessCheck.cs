using KvmPresync.Engine.Convergence;

namespace KvmPresync.Migration;

/// <summary>The readiness estimate published last before launch, against what the switchover then took.</summary>
/// <param name="Estimate">"If launched now", from the last sync round before launch.</param>
/// <param name="LaunchToResumeMs">Actual launch-to-resume, ms.</param>
/// <param name="DowntimeMs">Actual downtime, ms.</param>
/// <param name="Bytes">Actual wire bytes from launch to resume.</param>
public sealed record ReadinessCheck(ReadinessEstimate Estimate, double LaunchToResumeMs, double DowntimeMs, long Bytes)
{
    /// <summary>Estimate − actual launch-to-resume, ms (positive: the estimate was pessimistic).</summary>
    public double LaunchToResumeErrorMs => Estimate.LaunchToResumeMs - LaunchToResumeMs;

    /// <summary>Estimate − actual downtime, ms.</summary>
    public double DowntimeErrorMs => Estimate.DowntimeMs - DowntimeMs;
}
