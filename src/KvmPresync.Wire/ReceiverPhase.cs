namespace KvmPresync.Wire;

/// <summary>
/// The receiver's protocol state, one machine from the connection's first byte to the end (see
/// <see cref="ReceiverFrameGate"/> and the state diagram in docs/PROTOCOL.md). Each phase lists the frames accepted
/// in it; an Abort from the peer is accepted in every non-terminal phase.
/// </summary>
public enum ReceiverPhase
{
    Invalid = 0,
    /// <summary>Connected, nothing received: only Hello is accepted. The receiver answers HelloAck (or Abort).</summary>
    AwaitHello = 1,
    /// <summary>
    /// Hello received and answered with HelloAck: only AuthProof is accepted. The receiver verifies the proof, answers
    /// AuthOk (or Abort(AuthenticationFailed)), and only then creates the destination and its memory.
    /// No memory exists or is written before leaving this state.
    /// </summary>
    AwaitAuthProof = 2,
    /// <summary>Authenticated, destination created; live sync rounds (source guest running): PageBatch, RoundEnd (answered by Ack), Ping/Pong, Launch.</summary>
    Syncing = 3,
    /// <summary>
    /// Launch received: the switchover has begun. The source may still run final live rounds, then pauses its vCPUs and
    /// sends the last delta: PageBatch, RoundEnd, Ping/Pong, then FinalState.
    /// </summary>
    Final = 4,
    /// <summary>FinalState received: the receiver verifies the memory digest and only then restores the state and resumes; it sends Resumed or Abort.</summary>
    Verifying = 5,
    /// <summary>Resumed sent: the destination runs. Terminal.</summary>
    Done = 6,
    /// <summary>An Abort was sent or received, or the connection failed. Terminal; the destination guest was not resumed.</summary>
    Aborted = 7,
    /// <summary>
    /// Protocol 1.1 with <see cref="HelloOptions.Resumable"/>: authenticated (AuthOk sent), waiting for SessionStart. The receiver
    /// answers SessionState (New, Resumed + PageHashes, or Unknown); only then does it create (or take back) the destination.
    /// </summary>
    AwaitSessionStart = 8,
    /// <summary>
    /// Protocol 1.3 with <see cref="HelloOptions.MultiStream"/>: this connection's first frame was a StreamJoin that verified
    /// (AuthOk sent): a data stream of another connection's session. Only PageBatch and StreamMark are accepted.
    /// </summary>
    DataStream = 9,
}
