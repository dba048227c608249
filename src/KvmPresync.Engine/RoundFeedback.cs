using KvmPresync.Core;
namespace KvmPresync.Engine;

/// <summary>What one sync round measured: the inputs of <see cref="SyncWindow.OnRound"/>.</summary>
public readonly record struct RoundFeedback
{
    /// <summary>Length of the round (harvest to harvest).</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>Ack round-trip time measured this round (the sender's smoothed value); null when nothing was acked.</summary>
    public TimeSpan? Rtt { get; init; }

    /// <summary>Wire bytes sent this round.</summary>
    public long BytesSent { get; init; }

    /// <summary>Wire bytes the receiver acknowledged during this round.</summary>
    public long BytesAcked { get; init; }

    /// <summary>Bytes of the pages newly dirtied in this round's harvest.</summary>
    public long DirtyBytes { get; init; }

    /// <summary>Bytes of pending pages that were neither sent nor deliberately held back (left over by the window).</summary>
    public long DeferredBytes { get; init; }

    /// <summary>Guest progress rate during the round (work units per second); null when unknown.</summary>
    public double? ProgressRate { get; init; }
}
