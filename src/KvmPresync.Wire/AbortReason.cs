namespace KvmPresync.Wire;

/// <summary>Why a side aborts the migration (u32 in the Abort frame). 0 is reserved as Invalid.</summary>
public enum AbortReason : uint
{
    Invalid = 0,
    VersionMismatch = 1,
    AuthenticationFailed = 2,
    ProtocolViolation = 3,
    LayoutRejected = 4,
    DigestMismatch = 5,
    ReceiverFailure = 6,
    SenderFailure = 7,
    Cancelled = 8,
    UnsupportedOption = 9,
    UnsupportedHashAlgorithm = 10,
    /// <summary>The peer was silent for longer than the phase allows (handshake deadline, idle timeout).</summary>
    Timeout = 11,
    /// <summary>The receiver serves its maximum number of sessions; try again later.</summary>
    Busy = 12,
    /// <summary>The receiver cannot hold the announced guest memory now (its cap, or what the host has free).</summary>
    InsufficientMemory = 13,
}
