namespace KvmPresync.Wire;

/// <summary>Frame types (u32 on the wire). 0 is reserved as Invalid; unknown values are rejected at decode.</summary>
public enum FrameType : uint
{
    Invalid = 0,
    Hello = 1,
    HelloAck = 2,
    AuthProof = 3,
    AuthOk = 4,
    PageBatch = 5,
    RoundEnd = 6,
    Ack = 7,
    Launch = 8,
    FinalState = 9,
    Resumed = 10,
    Abort = 11,
    Ping = 12,
    Pong = 13,
    /// <summary>Protocol 1.1, only with <see cref="HelloOptions.Resumable"/>: S → R after AuthOk.</summary>
    SessionStart = 14,
    /// <summary>Protocol 1.1, only with <see cref="HelloOptions.Resumable"/>: R → S, answers SessionStart.</summary>
    SessionState = 15,
    /// <summary>Protocol 1.1, only with <see cref="HelloOptions.Resumable"/>: R → S after SessionState(Resumed).</summary>
    PageHashes = 16,
    /// <summary>Protocol 1.2, only with <see cref="HelloOptions.DeferredHandover"/>: R → S once, after Launch.</summary>
    DestinationReady = 17,
    /// <summary>Protocol 1.3, only with <see cref="HelloOptions.MultiStream"/>: S → R on the main connection (how many streams, the stripe), echoed R → S.</summary>
    StreamSetup = 18,
    /// <summary>Protocol 1.3, only with <see cref="HelloOptions.MultiStream"/>: S → R, the first frame of a data connection (answered by AuthOk or Abort).</summary>
    StreamJoin = 19,
    /// <summary>Protocol 1.3, only with <see cref="HelloOptions.MultiStream"/>: S → R on every stream after each send (a barrier the receiver waits on).</summary>
    StreamMark = 20,
}
