using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// The receiver refuses to go on for a reason of its own (digest mismatch, a destination that cannot be created,
/// does not match or cannot be resumed): <see cref="Reason"/> and the message go to the sender in an Abort.
/// </summary>
public sealed class ReceiverFailedException(AbortReason reason, string message, Exception? inner = null) : Exception(message, inner)
{
    public AbortReason Reason { get; } = reason;
}
