namespace KvmPresync.Wire;

/// <summary>
/// The receiver's frame-order rules as an explicit state machine: <see cref="Accept"/> is called with each
/// incoming frame type before its body is acted on, moves the phase, and refuses frames that are out of order
/// (e.g. PageBatch before authentication or after FinalState) with <see cref="ProtocolError.UnexpectedFrame"/>.
/// <code>
/// AwaitHello --Hello--> AwaitAuthProof --AuthProof--> Syncing --Launch--> Final --FinalState--> Verifying --MarkResumed--> Done
/// Syncing: PageBatch | RoundEnd | Ping | Pong          Final: PageBatch | RoundEnd | Ping | Pong
/// any non-terminal --Abort (received) or MarkAborted--> Aborted
/// </code>
/// </summary>
public sealed class ReceiverFrameGate
{
    public ReceiverFrameGate(ReceiverPhase initial = ReceiverPhase.AwaitHello)
    {
        if (initial is not (ReceiverPhase.AwaitHello or ReceiverPhase.Syncing))
            throw new ArgumentOutOfRangeException(nameof(initial), initial, "a receiver starts before the handshake (AwaitHello) or right after it (Syncing)");
        Phase = initial;
    }

    /// <summary>A gate for a connection whose handshake has completed.</summary>
    public static ReceiverFrameGate AfterHandshake() => new(ReceiverPhase.Syncing);

    public ReceiverPhase Phase { get; private set; }

    /// <summary>Checks that <paramref name="type"/> may arrive now and returns the phase after it.</summary>
    public ReceiverPhase Accept(FrameType type)
    {
        if (type == FrameType.Abort && Phase is not (ReceiverPhase.Done or ReceiverPhase.Aborted))
            return Phase = ReceiverPhase.Aborted;
        ReceiverPhase? next = (Phase, type) switch
        {
            (ReceiverPhase.AwaitHello, FrameType.Hello) => ReceiverPhase.AwaitAuthProof,
            (ReceiverPhase.AwaitAuthProof, FrameType.AuthProof) => ReceiverPhase.Syncing,
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

    /// <summary>The receiver sent Resumed: the migration is complete.</summary>
    public void MarkResumed()
    {
        if (Phase != ReceiverPhase.Verifying)
            throw new InvalidOperationException($"Resumed can only follow FinalState; the receiver is in phase {Phase}");
        Phase = ReceiverPhase.Done;
    }

    /// <summary>The receiver sent an Abort.</summary>
    public void MarkAborted()
    {
        if (Phase != ReceiverPhase.Done) Phase = ReceiverPhase.Aborted;
    }
}
