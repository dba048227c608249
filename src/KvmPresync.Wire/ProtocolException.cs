namespace KvmPresync.Wire;

/// <summary>
/// The one exception type of the wire layer: a frame or handshake that failed validation, a connection that
/// ended mid-frame, or an Abort received from the peer. <see cref="Field"/> and <see cref="Value"/> name what
/// failed; the message says it in words (e.g. "PageBatch descriptor 17: page 70000 is outside the announced
/// layout (65536 pages)").
/// </summary>
public class ProtocolException : Exception
{
    public ProtocolException(ProtocolError error, string field, object? value, string message, Exception? inner = null)
        : base(message, inner)
    {
        Error = error;
        Field = field;
        Value = value;
    }

    public ProtocolError Error { get; }

    /// <summary>The frame field (or stream position) that failed, e.g. "PageBatch.descriptor[17].page".</summary>
    public string Field { get; }

    /// <summary>The offending value as received, when there is one.</summary>
    public object? Value { get; }

    /// <summary>When the peer sent an Abort (or this side is about to send one): the reason.</summary>
    public AbortReason AbortReason { get; init; }

    /// <summary>True when this exception reports an Abort frame the peer sent (so there is no point answering with one).</summary>
    public bool FromPeerAbort { get; init; }

    /// <summary>
    /// True only for transport failures (peer closed, truncated, connection failed), where a new connection may
    /// succeed. False when retrying cannot help (wrong key, version mismatch, rejected layout, malformed frames):
    /// callers must not retry in a loop. After any ProtocolException the connection itself is unusable.
    /// </summary>
    public virtual bool IsRetryable => Error is ProtocolError.PeerClosed or ProtocolError.Truncated or ProtocolError.ConnectionFailed;
}
