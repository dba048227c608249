namespace KvmPresync.Migration;

/// <summary>The downtime split into its steps, in milliseconds.</summary>
/// <param name="FinalDeltaMs">Pause → the last harvest's pages (and held-back pages) handed to the transport.</param>
/// <param name="DigestMs">Hashing all of the paused source's memory for the verification digest.</param>
/// <param name="StateMs">Saving vCPU/device state and sending FinalState.</param>
/// <param name="DestinationMs">FinalState sent → "resumed" received (transfer, verify, restore, start).</param>
public sealed record DowntimeBreakdown(double FinalDeltaMs, double DigestMs, double StateMs, double DestinationMs);
