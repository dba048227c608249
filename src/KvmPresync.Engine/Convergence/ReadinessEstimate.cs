namespace KvmPresync.Engine.Convergence;

/// <summary>
/// "If launched now": what the switchover would take, as <see cref="ReadinessEstimator"/> predicts it from the engine's
/// pending set, the guest's dirty rate, the link and the convergence policy. Published every sync round.
/// </summary>
/// <param name="LaunchToResumeMs">Launch requested → the destination runs, ms.</param>
/// <param name="DowntimeMs">The guest paused → the destination runs, ms.</param>
/// <param name="Bytes">Wire bytes from launch to resume: what is pending now, what the guest dirties during the live rounds, the vCPU state.</param>
/// <param name="LiveRounds">Live rounds the convergence policy would run before pausing.</param>
/// <param name="GivesUp">The policy would give up (the source keeps running); the times are then those up to giving up.</param>
public sealed record ReadinessEstimate(double LaunchToResumeMs, double DowntimeMs, long Bytes, int LiveRounds, bool GivesUp = false);
