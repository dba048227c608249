namespace KvmPresync.Wire;

/// <summary>
/// A transport that sends a list of buffers as one contiguous byte sequence without first copying them into
/// one buffer (gather I/O). <see cref="FrameWriter"/> hands it a frame's header and descriptors followed by
/// page payloads that point into guest memory. Implementations: <see cref="StreamGatherWriter"/>,
/// <see cref="SocketGatherWriter"/>; a sendmsg/MSG_ZEROCOPY transport can implement it too.
/// </summary>
public interface IGatherWriter
{
    /// <summary>Sends every byte of every segment, in order; returns when all are handed to the transport.</summary>
    ValueTask WriteAsync(IReadOnlyList<ReadOnlyMemory<byte>> segments, CancellationToken cancellationToken);
}
