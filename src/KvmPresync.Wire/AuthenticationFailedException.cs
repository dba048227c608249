namespace KvmPresync.Wire;

/// <summary>
/// The peer could not prove it holds the pre-shared key (or this side's proof was refused). Never retryable:
/// the keys differ or someone is replaying or reflecting a handshake. Nothing has been written to guest memory.
/// </summary>
public sealed class AuthenticationFailedException : ProtocolException
{
    public AuthenticationFailedException(string field, string message)
        : base(ProtocolError.AuthenticationFailed, field, null, message)
    {
        AbortReason = AbortReason.AuthenticationFailed;
    }

    public override bool IsRetryable => false;
}
