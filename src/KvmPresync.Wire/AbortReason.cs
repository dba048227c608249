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
}
