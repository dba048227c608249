namespace KvmPresync.Wire;

/// <summary>The receiver's protocol state (see the state diagram in docs/PROTOCOL.md).</summary>
public enum ReceiverPhase
{
    Invalid = 0,
    /// <summary>Connected; only Hello is accepted.</summary>
    AwaitHello = 1,
    /// <summary>HelloAck sent; only AuthProof (or Abort) is accepted. No memory is written before leaving this state.</summary>
    AwaitAuthProof = 2,
    /// <summary>Authenticated; sync rounds: PageBatch, RoundEnd, Ping/Pong, Launch.</summary>
    Syncing = 3,
    /// <summary>Launch received (source paused): final PageBatches and RoundEnd, then FinalState.</summary>
    Final = 4,
    /// <summary>FinalState received: the receiver verifies the digest and restores state; it sends Resumed or Abort.</summary>
    Verifying = 5,
    /// <summary>Resumed sent: the destination runs. Terminal.</summary>
    Done = 6,
    /// <summary>An Abort was sent or received. Terminal.</summary>
    Aborted = 7,
}
