using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// Protocol 1.3, <see cref="HelloOptions.MultiStream"/>: the main connection sets up its data streams (StreamSetup), a data
/// connection joins one (StreamJoin) and both sides of the barrier (StreamMark). See <see cref="ReceiverStreams"/>.
/// </summary>
internal sealed partial class ReceiverSession
{
    /// <summary>Main connection, before any memory frame: register the session for joins, then echo the setup.</summary>
    private async Task OnStreamSetupAsync(FrameHeader header)
    {
        StreamSetup setup = await _reader!.ReadBodyAsync<StreamSetup>(header, _cancellationToken).ConfigureAwait(false);
        HandshakeResult session = _negotiated ?? throw new InvalidOperationException("the gate admitted StreamSetup before the handshake completed");
        if (_joins is null || (session.Options & HelloOptions.MultiStream) == 0)
            throw new ReceiverFailedException(AbortReason.ProtocolViolation, "StreamSetup: several streams (protocol 1.3 MultiStream) were not negotiated");
        if (_streams is not null)
            throw new ReceiverFailedException(AbortReason.ProtocolViolation, "StreamSetup: this session has set up its streams already");
        if (_memoryFrames)
            throw new ReceiverFailedException(AbortReason.ProtocolViolation, "StreamSetup: it must come before the first memory frame of the connection");
        _streams = new ReceiverStreams(_joins, _key, session.Nonces, setup, Memory, session.Layout, session.Options, _connectionId);
        _streams.Register();
        _relinkDeadline = true; // from the next frame on, a failed data stream fails this session's wait
        await _writer!.WriteAsync(setup, _cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A data connection's first frame: it names a session set up here, proves it holds the key (bound to that session's
    /// nonces) and claims a free index. Only then may it send pages, straight into that session's memory.
    /// </summary>
    private async Task OnStreamJoinAsync(FrameHeader header)
    {
        StreamJoin join = await _reader!.ReadBodyAsync<StreamJoin>(header, _cancellationToken).ConfigureAwait(false);
        ReceiverStreams streams = _joins?.Find(join.JoinId.Span)
            ?? throw new ReceiverFailedException(AbortReason.ProtocolViolation,
                $"StreamJoin (stream {join.Index} of {join.Streams}) names no session of this receiver that takes data streams " +
                "(unknown id, the session ended, or it did not set up several streams); connection closed");
        streams.Join(join, _takeover); // throws: proof, count, duplicate index, sealed
        _streams = streams;
        _streamIndex = (int)join.Index;
        _memory = streams.Memory;
        _reader!.UseSession(streams.Layout, streams.Options);
        _writer!.UseSession(streams.Layout, streams.Options);
        await _writer.WriteAsync(default(AuthOk), _cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Data stream: record the mark. Main connection: wait until every data stream has delivered it.</summary>
    private async Task OnStreamMarkAsync(FrameHeader header)
    {
        StreamMark mark = await _reader!.ReadBodyAsync<StreamMark>(header, _cancellationToken).ConfigureAwait(false);
        if (_streams is null)
            throw new ReceiverFailedException(AbortReason.ProtocolViolation, "StreamMark before StreamSetup");
        if (_streamIndex > 0) _streams.Mark(_streamIndex, mark.Sequence);
        else await _streams.WaitForMarksAsync(mark.Sequence, () => _deadline?.CancelAfter(_options.IdleTimeout), _cancellationToken).ConfigureAwait(false);
    }
}
