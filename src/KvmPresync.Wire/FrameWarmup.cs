namespace KvmPresync.Wire;

/// <summary>
/// Runs the code of the frames a migration exchanges once, at its switchover — Launch, FinalState, Resumed — through an
/// in-memory writer and reader, so that it is compiled before the downtime rather than inside it (DestinationReady too: a
/// libvirt source reads it right before it suspends the guest).
/// <see cref="FrameWriter.WriteAsync{T}"/> and <see cref="FrameReader.ReadBodyAsync{T}"/> are generic over the body type: for
/// a value-type body (Launch, Resumed) the JIT compiles them, their state machines and builders for that type at its first
/// frame (measured: ~2 ms for the sender's first Resumed read, ~1.5 ms for the receiver's write of it, both inside the
/// downtime). Both sides await <see cref="SwitchoverAsync"/> once per connection, after the handshake.
/// </summary>
internal static class FrameWarmup
{
    /// <summary>Writes and reads back one Launch, FinalState, Resumed and DestinationReady frame, in memory (completes without waiting).</summary>
    public static async Task SwitchoverAsync()
    {
        await RoundTripAsync(new Launch(0, 0, 0)).ConfigureAwait(false);
        await RoundTripAsync(new FinalState(1, 0, new byte[WireLimits.DigestBytes], new byte[8])).ConfigureAwait(false);
        await RoundTripAsync(new Resumed(0, 0)).ConfigureAwait(false);
        await RoundTripAsync(new DestinationReady(0)).ConfigureAwait(false); // libvirt sessions: read just before the pause
    }

    /// <summary>
    /// Writes <paramref name="body"/> as a frame into memory and reads it back, awaiting both the way the sender and the
    /// receiver do (ConfigureAwait(false)), so the same awaiter code is compiled.
    /// </summary>
    public static async Task<T> RoundTripAsync<T>(T body) where T : IFrameBody<T>
    {
        var buffer = new MemoryStream();
        await new FrameWriter(buffer).WriteAsync(body).ConfigureAwait(false);
        buffer.Position = 0;
        var reader = new FrameReader(buffer);
        FrameHeader header = await reader.ReadHeaderAsync().ConfigureAwait(false);
        return await reader.ReadBodyAsync<T>(header).ConfigureAwait(false);
    }
}
