namespace KvmPresync.Wire;

/// <summary>
/// The receiver's frame-order rules as one explicit state machine over the whole connection, handshake included:
/// <see cref="Accept"/> is called with each incoming frame type, from the very first frame, before its body is read
/// or acted on; it moves the phase and refuses frames that are out of order (e.g. PageBatch before authentication,
/// a second Hello, FinalState before Launch) with <see cref="ProtocolError.UnexpectedFrame"/>.
/// <code>
/// AwaitHello --Hello--> AwaitAuthProof --AuthProof--> Syncing --Launch--> Final --FinalState--> Verifying --MarkResumed--> Done
///                    (Resumable: AuthProof --RequireSessionStart--> AwaitSessionStart --SessionStart--> Syncing)
/// Syncing: PageBatch | RoundEnd | Ping | Pong          Final: PageBatch | RoundEnd | Ping | Pong     Verifying: Ping | Pong
/// any non-terminal --Abort (received) or MarkAborted--> Aborted
/// (1.3, MultiStream: Syncing also takes StreamSetup and StreamMark, Final StreamMark;
///  a data connection: AwaitHello --StreamJoin--> DataStream: PageBatch | StreamMark)
/// </code>
/// The gate only orders frames: the receiver still verifies each one (an AuthProof that does not verify, a Hello it
/// refuses, a digest that does not match) and calls <see cref="MarkAborted"/> when it gives up.
/// </summary>
public sealed class ReceiverFrameGate
{
    /// <summary>The phase the receiver is in; a new gate starts at <see cref="ReceiverPhase.AwaitHello"/> (the connection's first byte).</summary>
    public ReceiverPhase Phase { get; private set; } = ReceiverPhase.AwaitHello;

    /// <summary>Checks that <paramref name="type"/> may arrive now and returns the phase after it.</summary>
    public ReceiverPhase Accept(FrameType type)
    {
        if (type == FrameType.Abort && Phase is not (ReceiverPhase.Done or ReceiverPhase.Aborted))
            return Phase = ReceiverPhase.Aborted;
        ReceiverPhase? next = (Phase, type) switch
        {
            (ReceiverPhase.AwaitHello, FrameType.Hello) => ReceiverPhase.AwaitAuthProof,
            (ReceiverPhase.AwaitHello, FrameType.StreamJoin) => ReceiverPhase.DataStream,
            (ReceiverPhase.DataStream, FrameType.PageBatch or FrameType.StreamMark) => ReceiverPhase.DataStream,
            (ReceiverPhase.Syncing, FrameType.StreamSetup or FrameType.StreamMark) => ReceiverPhase.Syncing,
            (ReceiverPhase.Final, FrameType.StreamMark) => ReceiverPhase.Final,
            (ReceiverPhase.AwaitAuthProof, FrameType.AuthProof) => ReceiverPhase.Syncing,
            (ReceiverPhase.AwaitSessionStart, FrameType.SessionStart) => ReceiverPhase.Syncing,
            (ReceiverPhase.Syncing, FrameType.PageBatch or FrameType.RoundEnd or FrameType.Ping or FrameType.Pong) => ReceiverPhase.Syncing,
            (ReceiverPhase.Syncing, FrameType.Launch) => ReceiverPhase.Final,
            (ReceiverPhase.Final, FrameType.PageBatch or FrameType.RoundEnd or FrameType.Ping or FrameType.Pong) => ReceiverPhase.Final,
            (ReceiverPhase.Final, FrameType.FinalState) => ReceiverPhase.Verifying,
            (ReceiverPhase.Verifying, FrameType.Ping or FrameType.Pong) => ReceiverPhase.Verifying,
            _ => null,
        };
        if (next is null)
            throw new ProtocolException(ProtocolError.UnexpectedFrame, "FrameHeader.type", type,
                $"a {type} frame is not allowed while the receiver is in phase {Phase}");
        return (Phase = next.Value);
    }

    /// <summary>
    /// The handshake negotiated <see cref="HelloOptions.Resumable"/>: after AuthProof (phase Syncing, nothing received
    /// since) the next frame must be SessionStart (phase <see cref="ReceiverPhase.AwaitSessionStart"/>).
    /// </summary>
    public void RequireSessionStart()
    {
        if (Phase != ReceiverPhase.Syncing)
            throw new InvalidOperationException($"SessionStart can only be required right after AuthProof; the receiver is in phase {Phase}");
        Phase = ReceiverPhase.AwaitSessionStart;
    }

    /// <summary>The receiver sent Resumed: the migration is complete.</summary>
    public void MarkResumed()
    {
        if (Phase != ReceiverPhase.Verifying)
            throw new InvalidOperationException($"Resumed can only follow FinalState; the receiver is in phase {Phase}");
        Phase = ReceiverPhase.Done;
    }

    /// <summary>The receiver gave up (it sent an Abort, or the connection failed). No effect once Done.</summary>
    public void MarkAborted()
    {
        if (Phase != ReceiverPhase.Done) Phase = ReceiverPhase.Aborted;
    }
}
