namespace KvmPresync.Migration;

/// <summary>The downtime split into its steps, in milliseconds.</summary>
/// <param name="FinalDeltaMs">Pause → the last harvest's pages (and held-back pages) handed to the transport.</param>
/// <param name="DigestMs">
/// The source's memory digest: with <see cref="VerifyMode.Delta"/> the hash tree's nodes above the pages sent paused (the page
/// hashes were taken as they were sent); with <see cref="VerifyMode.Full"/> hashing all of the paused memory first.
/// </param>
/// <param name="StateMs">
/// Waiting for the vCPU/device state (saved on a standby thread since the pause, in parallel with the final delta and the
/// digest) and sending FinalState.
/// </param>
/// <param name="DestinationMs">FinalState sent → "resumed" received (transfer, verify, restore, start).</param>
public sealed record DowntimeBreakdown(double FinalDeltaMs, double DigestMs, double StateMs, double DestinationMs);
