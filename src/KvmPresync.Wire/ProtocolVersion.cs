namespace KvmPresync.Wire;

/// <summary>
/// Protocol version (u16 major, u16 minor). The rule: peers must share the major version; the session runs at
/// the lower of the two minors. A minor bump may only add optional things (new option bits, new frame types
/// that are sent only when the peer's minor shows it knows them); anything else is a major bump.
/// </summary>
public readonly record struct ProtocolVersion(ushort Major, ushort Minor)
{
    /// <summary>The version this code speaks.</summary>
    public static ProtocolVersion Current => new(1, 3);

    /// <summary>The first version with <see cref="HelloOptions.Resumable"/> and its frames (SessionStart, SessionState, PageHashes).</summary>
    public static ProtocolVersion Resumable => new(1, 1);

    /// <summary>The first version with <see cref="HelloOptions.DeferredHandover"/> and its frame (DestinationReady).</summary>
    public static ProtocolVersion DeferredHandover => new(1, 2);

    /// <summary>The first version with <see cref="HelloOptions.MultiStream"/> and its frames (StreamSetup, StreamJoin, StreamMark).</summary>
    public static ProtocolVersion MultiStream => new(1, 3);

    /// <summary>The first version with <see cref="HelloOptions.TreeDigest"/> (the hash-tree memory digest in FinalState).</summary>
    public static ProtocolVersion TreeDigest => new(1, 3);

    /// <summary>The first version with <see cref="HelloOptions.CompressedPages"/> (the PageBatch codec field).</summary>
    public static ProtocolVersion CompressedPages => new(1, 3);

    /// <summary>The version a session runs at when this side (<paramref name="local"/>) meets <paramref name="offered"/>; null when majors differ.</summary>
    public static ProtocolVersion? Negotiate(ProtocolVersion local, ProtocolVersion offered) =>
        local.Major != offered.Major ? null : new ProtocolVersion(local.Major, Math.Min(local.Minor, offered.Minor));

    public override string ToString() => $"{Major}.{Minor}";
}
