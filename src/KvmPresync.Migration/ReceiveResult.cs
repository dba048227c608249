using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>How a receive ended.</summary>
public sealed record ReceiveResult
{
    /// <summary>True when the destination guest was resumed (and the caller now owns the target).</summary>
    public required bool Resumed { get; init; }

    /// <summary>The memory digest matched the source's before resuming.</summary>
    public bool Verified { get; init; }

    /// <summary>What went wrong, in words; null on success.</summary>
    public string? Failure { get; init; }

    /// <summary>
    /// When the receive failed: the receiver's phase when it did — the phase in which the failing frame arrived (or in
    /// which it was waiting when the connection failed or the receive was cancelled). E.g. AwaitHello: Hello refused;
    /// AwaitAuthProof: proof refused or the destination could not be created; Syncing/Final: bad page stream, sender
    /// aborted; Final: FinalState did not verify or the guest could not be resumed. Null on success.
    /// </summary>
    public ReceiverPhase? FailedIn { get; init; }

    /// <summary>The reason of the Abort frame this side sent (best effort: the peer may be gone); null when none was sent (success, or the sender aborted).</summary>
    public AbortReason? AbortSent { get; init; }

    /// <summary>The reason of the Abort frame the sender sent, when the receive failed because the sender aborted (e.g. it found this side's key proof wrong); else null.</summary>
    public AbortReason? AbortReceived { get; init; }

    /// <summary>The receive was stopped through its cancellation token.</summary>
    public bool Cancelled { get; init; }

    /// <summary>
    /// The connection of a resumable session failed during sync and the receiver kept the destination, its memory and page
    /// hashes for the sender's reconnection (protocol 1.1). Not a final outcome: the reconnection's session continues it.
    /// </summary>
    public bool Parked { get; init; }

    /// <summary>
    /// Set when this connection was a data stream (protocol 1.3 MultiStream) of another connection's session: its index.
    /// Not a migration of its own — the main connection's result is the outcome.
    /// </summary>
    public int? Stream { get; init; }

    public long PagesApplied { get; init; }
    public long BytesReceived { get; init; }
    /// <summary>FinalState received → Resumed sent (verify + restore + start).</summary>
    public double ResumeMs { get; init; }

    /// <summary>
    /// Pages the verification at the switchover re-hashed from their bytes, with destination writes tracked
    /// (<see cref="ReceiverOptions.TrackWrites"/>): those written since the last catch-up, at most about 1/16 of memory
    /// and a batch (the rest was re-hashed while the launch's batches arrived); 0 without tracking.
    /// </summary>
    public long PagesRehashedAtSwitchover { get; init; }
}
