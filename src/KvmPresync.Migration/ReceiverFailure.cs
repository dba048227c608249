using System.Net.Sockets;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// What a receiver failure means for the peer and for the caller: the Abort to send (null: none — the sender itself
/// aborted) and the failure text for <see cref="ReceiveResult.Failure"/>. Every exception maps to one, including
/// ones nobody expected (a bug in the receiver or the migration target), so none escapes the receiver.
/// </summary>
internal sealed record ReceiverFailure(AbortReason? Abort, string AbortMessage, string Text, bool Cancelled)
{
    public static ReceiverFailure From(Exception e, bool cancelledByCaller)
    {
        const string NotResumed = "; the guest was not resumed";
        switch (e)
        {
            case OperationCanceledException when cancelledByCaller:
                return new(AbortReason.Cancelled, "the receiver was cancelled; the destination guest was not resumed",
                    "cancelled" + NotResumed, Cancelled: true);
            case ProtocolException { FromPeerAbort: true }:
                return new(null, "", $"the sender aborted: {e.Message}" + NotResumed, false);
            case AuthenticationFailedException auth:
                // The same fixed text the handshake always sent: it says the proof failed, nothing about why.
                return new(AbortReason.AuthenticationFailed, auth.Message, $"authentication failed: {e.Message}" + NotResumed, false);
            case ProtocolException { Error: ProtocolError.TlsFailed }:
                // No Abort: the channel to the sender is not a working TLS session (or the sender is waiting for a TLS handshake).
                return new(null, "", e.Message + NotResumed, false);
            case ProtocolException { IsRetryable: true }:
                return new(AbortReason.ProtocolViolation, e.Message, $"the connection failed: {e.Message}" + NotResumed, false);
            case ProtocolException p:
                return new(p.AbortReason == AbortReason.Invalid ? AbortReason.ProtocolViolation : p.AbortReason, p.Message,
                    $"rejected the stream: {e.Message}" + NotResumed, false);
            case ReceiverFailedException r:
                return new(r.Reason, r.Message + NotResumed, r.Message + NotResumed, false);
            case IOException or SocketException or ObjectDisposedException or OperationCanceledException:
                return new(AbortReason.ReceiverFailure, $"connection failed: {e.Message}", $"connection failed: {e.Message}" + NotResumed, false);
            default:
                string bug = $"receiver failure: unexpected {e.GetType().Name}: {e.Message} (a bug in the receiver or the migration target; " +
                    "report it with the receiver's log)";
                return new(AbortReason.ReceiverFailure, bug + NotResumed, bug + NotResumed, false);
        }
    }
}
