using KvmPresync.Wire;

namespace KvmPresync.Tests.Wire;

public sealed class ReceiverFrameGateTests
{
    /// <summary>A gate that has passed Hello and AuthProof (the receiver verified the proof).</summary>
    private static ReceiverFrameGate Authenticated()
    {
        var gate = new ReceiverFrameGate();
        gate.Accept(FrameType.Hello);
        gate.Accept(FrameType.AuthProof);
        return gate;
    }

    [Fact]
    public void Walks_the_normal_migration_sequence()
    {
        var gate = new ReceiverFrameGate();
        Assert.Equal(ReceiverPhase.AwaitHello, gate.Phase);
        Assert.Equal(ReceiverPhase.AwaitAuthProof, gate.Accept(FrameType.Hello));
        Assert.Equal(ReceiverPhase.Syncing, gate.Accept(FrameType.AuthProof));
        Assert.Equal(ReceiverPhase.Syncing, gate.Accept(FrameType.PageBatch));
        Assert.Equal(ReceiverPhase.Syncing, gate.Accept(FrameType.RoundEnd));
        Assert.Equal(ReceiverPhase.Final, gate.Accept(FrameType.Launch));
        Assert.Equal(ReceiverPhase.Final, gate.Accept(FrameType.PageBatch));
        Assert.Equal(ReceiverPhase.Verifying, gate.Accept(FrameType.FinalState));
        gate.MarkResumed();
        Assert.Equal(ReceiverPhase.Done, gate.Phase);
    }

    [Theory]
    [InlineData(FrameType.AuthProof)]
    [InlineData(FrameType.PageBatch)]
    [InlineData(FrameType.RoundEnd)]
    [InlineData(FrameType.Launch)]
    [InlineData(FrameType.FinalState)]
    [InlineData(FrameType.Ping)]
    [InlineData(FrameType.Pong)]
    [InlineData(FrameType.HelloAck)]
    [InlineData(FrameType.AuthOk)]
    [InlineData(FrameType.Ack)]
    [InlineData(FrameType.Resumed)]
    public void Only_Hello_opens_a_connection(FrameType first)
    {
        var gate = new ReceiverFrameGate();
        var e = Assert.Throws<ProtocolException>(() => gate.Accept(first));
        Assert.Equal(ProtocolError.UnexpectedFrame, e.Error);
        Assert.Equal($"a {first} frame is not allowed while the receiver is in phase AwaitHello", e.Message);
        Assert.Equal(ReceiverPhase.AwaitHello, gate.Phase); // a refused frame does not move the gate
    }

    [Theory]
    [InlineData(FrameType.Hello)]
    [InlineData(FrameType.PageBatch)]
    [InlineData(FrameType.RoundEnd)]
    [InlineData(FrameType.Launch)]
    [InlineData(FrameType.FinalState)]
    [InlineData(FrameType.Ping)]
    public void After_Hello_only_AuthProof_is_accepted(FrameType second)
    {
        var gate = new ReceiverFrameGate();
        gate.Accept(FrameType.Hello);
        var e = Assert.Throws<ProtocolException>(() => gate.Accept(second));
        Assert.Equal(ProtocolError.UnexpectedFrame, e.Error);
        Assert.Equal($"a {second} frame is not allowed while the receiver is in phase AwaitAuthProof", e.Message);
        Assert.Equal(ReceiverPhase.AwaitAuthProof, gate.Phase);
    }

    [Fact]
    public void A_second_Hello_after_authentication_is_refused()
    {
        var gate = Authenticated();
        Assert.Equal(ProtocolError.UnexpectedFrame, Assert.Throws<ProtocolException>(() => gate.Accept(FrameType.Hello)).Error);
        Assert.Equal(ProtocolError.UnexpectedFrame, Assert.Throws<ProtocolException>(() => gate.Accept(FrameType.AuthProof)).Error);
        Assert.Equal(ReceiverPhase.Syncing, gate.Phase);
    }

    [Theory]
    [InlineData(0)] // AwaitHello
    [InlineData(1)] // AwaitAuthProof
    public void Abort_during_the_handshake_moves_to_Aborted(int framesBefore)
    {
        var gate = new ReceiverFrameGate();
        if (framesBefore > 0) gate.Accept(FrameType.Hello);
        Assert.Equal(ReceiverPhase.Aborted, gate.Accept(FrameType.Abort));
        Assert.Throws<ProtocolException>(() => gate.Accept(FrameType.AuthProof));
    }

    [Fact]
    public void MarkAborted_during_the_handshake_is_terminal()
    {
        var gate = new ReceiverFrameGate();
        gate.Accept(FrameType.Hello);
        gate.MarkAborted(); // e.g. the AuthProof did not verify
        Assert.Equal(ReceiverPhase.Aborted, gate.Phase);
        Assert.Throws<ProtocolException>(() => gate.Accept(FrameType.PageBatch));
        Assert.Throws<InvalidOperationException>(() => gate.MarkResumed());
    }

    [Fact]
    public void Page_data_before_authentication_is_refused()
    {
        var gate = new ReceiverFrameGate();
        gate.Accept(FrameType.Hello);
        var e = Assert.Throws<ProtocolException>(() => gate.Accept(FrameType.PageBatch));
        Assert.Equal(ProtocolError.UnexpectedFrame, e.Error);
        Assert.Equal("a PageBatch frame is not allowed while the receiver is in phase AwaitAuthProof", e.Message);
    }

    [Theory]
    [InlineData(FrameType.PageBatch)]
    [InlineData(FrameType.Launch)]
    [InlineData(FrameType.FinalState)]
    public void Nothing_but_ping_or_abort_after_FinalState(FrameType late)
    {
        var gate = Authenticated();
        gate.Accept(FrameType.Launch);
        gate.Accept(FrameType.FinalState);
        Assert.Equal(ReceiverPhase.Verifying, gate.Accept(FrameType.Ping));
        Assert.Equal(ProtocolError.UnexpectedFrame, Assert.Throws<ProtocolException>(() => gate.Accept(late)).Error);
    }

    [Fact]
    public void FinalState_without_Launch_is_refused() =>
        Assert.Equal(ProtocolError.UnexpectedFrame, Assert.Throws<ProtocolException>(() => Authenticated().Accept(FrameType.FinalState)).Error);

    [Fact]
    public void Abort_moves_any_live_phase_to_Aborted()
    {
        var gate = Authenticated();
        Assert.Equal(ReceiverPhase.Aborted, gate.Accept(FrameType.Abort));
        Assert.Throws<ProtocolException>(() => gate.Accept(FrameType.PageBatch));
    }
}
