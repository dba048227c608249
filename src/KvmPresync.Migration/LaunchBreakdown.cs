namespace KvmPresync.Migration;

/// <summary>The launch-to-resume before the pause, in milliseconds (the rest is the <see cref="DowntimeBreakdown"/>; the rounds are <see cref="MigrationResult.FinalLiveRounds"/>).</summary>
/// <param name="SyncEndMs">Launch requested → the sync round under way ended (its send stops at the next batch).</param>
/// <param name="LiveMs">Sync ended → the guest paused: the final live rounds (Launch frame, harvests, sends).</param>
/// <param name="LiveBytes">Wire bytes the final live rounds wrote.</param>
/// <param name="HarvestMs">Of <paramref name="LiveMs"/>, the time spent harvesting the dirty log.</param>
public sealed record LaunchBreakdown(double SyncEndMs, double LiveMs, long LiveBytes, double HarvestMs);
