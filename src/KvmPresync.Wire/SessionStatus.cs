namespace KvmPresync.Wire;

/// <summary>What a receiver knows of the session a SessionStart names (u32 in SessionState; 0 and unknown values are rejected).</summary>
public enum SessionStatus : uint
{
    Invalid = 0,
    /// <summary>Generation 0: a new session; the receiver created a fresh (all-zero) destination.</summary>
    New = 1,
    /// <summary>The receiver had this session parked at generation − 1 and took it back: its page hashes follow in PageHashes frames.</summary>
    Resumed = 2,
    /// <summary>
    /// The receiver has no usable state for this session (restarted, expired, another generation, another layout): it created a
    /// fresh destination under the same id and generation, and the sender starts over (every page pending).
    /// </summary>
    Unknown = 3,
}
