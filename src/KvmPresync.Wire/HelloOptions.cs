namespace KvmPresync.Wire;

/// <summary>Option bits the sender offers in Hello; the receiver accepts a subset in HelloAck. Unknown bits are rejected.</summary>
[Flags]
public enum HelloOptions : uint
{
    None = 0,
    /// <summary>The sender may describe pages as <see cref="PageKind.Zero"/> instead of sending their bytes.</summary>
    ZeroPages = 1u << 0,
    /// <summary>The sender may describe pages as <see cref="PageKind.Unchanged"/> (content-hash deduplication).</summary>
    UnchangedPages = 1u << 1,
    /// <summary>
    /// Protocol 1.1: the presync may survive a lost connection. After AuthOk the sender sends SessionStart, the receiver
    /// answers SessionState (and PageHashes when it resumes); a receiver parks a session whose connection failed during
    /// sync. Only accepted at a negotiated minor version ≥ 1.
    /// </summary>
    Resumable = 1u << 2,

    /// <summary>
    /// Protocol 1.2: the guest's device state moves by a path of its own (libvirt/QEMU's migration stream), started at
    /// launch; the destination tells the sender with <see cref="FrameType.DestinationReady"/> when it is ready to receive
    /// it (its QEMU started and held), and the sender pauses the guest only then. Only accepted at minor ≥ 2.
    /// </summary>
    DeferredHandover = 1u << 3,

    /// <summary>
    /// Protocol 1.3: a PageBatch may carry its Full payloads compressed (<see cref="PageCodec"/> in the batch's codec field,
    /// then compressed and raw lengths). Only accepted at minor ≥ 3.
    /// </summary>
    CompressedPages = 1u << 4,


    /// <summary>
    /// Protocol 1.3: after AuthOk (and SessionStart) the sender may open more TCP connections that join this session
    /// (<see cref="FrameType.StreamSetup"/> on this connection, then <see cref="FrameType.StreamJoin"/> on each new one) and
    /// carry page batches; control frames stay on this connection. Only accepted at minor ≥ 3.
    /// </summary>
    MultiStream = 1u << 5,

    /// <summary>
    /// Protocol 1.3: <see cref="FinalState"/>'s memory digest is the hash tree over the page hashes
    /// (<c>PageHashTree</c>, magic "KPSMDT01"), which each side keeps current as pages are sent and land, so the switchover
    /// hashes only what changed; without it the digest is the flat one (<c>MemoryDigest</c>, "KPSMDG01"). Only accepted at
    /// minor ≥ 3.
    /// </summary>
    TreeDigest = 1u << 6,

    /// <summary>Every bit this version defines.</summary>
    All = ZeroPages | UnchangedPages | Resumable | DeferredHandover | CompressedPages | MultiStream | TreeDigest,
}
