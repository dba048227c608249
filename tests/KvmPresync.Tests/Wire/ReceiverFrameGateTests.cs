using KvmPresync.Wire;

namespace KvmPresync.Tests.Wire;

public sealed class ReceiverFrameGateTests
{
    [Fact]
    public void Walks_the_normal_migration_sequence()
    {
        var gate = new ReceiverFrameGate();
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
        var gate = ReceiverFrameGate.AfterHandshake();
        gate.Accept(FrameType.Launch);
        gate.Accept(FrameType.FinalState);
        Assert.Equal(ProtocolError.UnexpectedFrame, Assert.Throws<ProtocolException>(() => gate.Accept(late)).Error);
    }

    [Fact]
    public void FinalState_without_Launch_is_refused() =>
        Assert.Throws<ProtocolException>(() => ReceiverFrameGate.AfterHandshake().Accept(FrameType.FinalState));

    [Fact]
    public void Abort_moves_any_live_phase_to_Aborted()
    {
        var gate = ReceiverFrameGate.AfterHandshake();
        Assert.Equal(ReceiverPhase.Aborted, gate.Accept(FrameType.Abort));
        Assert.Throws<ProtocolException>(() => gate.Accept(FrameType.PageBatch));
    }
}
