using System.Net.Sockets;
using KvmPresync.Core;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// The destination side of one migration connection, as one explicit state machine from the first byte
/// (<see cref="ReceiverFrameGate"/>, driven by <see cref="ReceiverSession"/>): authenticate the peer before anything
/// is allocated → validate every header and its order → receive each payload straight into destination guest
/// memory, hashing it as it lands → ack each round → on FinalState compare the memory digest and only if it matches
/// restore the state and resume the guest, then answer Resumed.
/// Any failure gets an Abort with the cause (unless the sender aborted), a closed connection and a released target;
/// the guest is not resumed and nothing is thrown.
/// </summary>
public static class PresyncReceiver
{
    /// <summary>
    /// Receives one migration over <paramref name="connection"/>. <paramref name="createTarget"/> is called once, after
    /// the sender authenticated, with the announced layout; when the result says <see cref="ReceiveResult.Resumed"/> the
    /// caller owns the target, otherwise it has been disposed. Shuts the connection down before returning.
    /// </summary>
    public static async Task<ReceiveResult> RunAsync(Socket connection, PreSharedKey key, Func<MemoryLayout, IMigrationTarget> createTarget,
        ReceiverOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(createTarget);
        (ReceiveResult result, _) = await RunSessionAsync(connection, key, layout => (createTarget(layout), null), null, "", options, cancellationToken)
            .ConfigureAwait(false);
        return result;
    }

    /// <summary>
    /// One receive with resumable sessions when <paramref name="store"/> is given (then HelloOptions.Resumable is accepted):
    /// also returns the resumed destination (whether taken back from a parked session or created here).
    /// </summary>
    internal static async Task<(ReceiveResult Result, IMigrationTarget? Resumed)> RunSessionAsync(Socket connection, PreSharedKey key,
        Func<MemoryLayout, (IMigrationTarget Target, IDisposable? Lease)> createTarget, ParkedSessions? store, string connectionId,
        ReceiverOptions? options, CancellationToken cancellationToken, StreamJoins? joins = null, bool joinOnly = false)
    {
        try
        {
            var session = new ReceiverSession(connection, key, createTarget, store, connectionId, options ?? new ReceiverOptions(), cancellationToken, joins, joinOnly);
            ReceiveResult result = await session.RunAsync().ConfigureAwait(false);
            return (result, session.ResumedTarget);
        }
        finally
        {
            try { connection.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        }
    }

    /// <summary>
    /// The same receive over a byte stream instead of a socket: frames from <paramref name="input"/>, answers to
    /// <paramref name="output"/>. For the fuzz harness and the property tests (no sockets, no timing); never throws.
    /// </summary>
    internal static Task<ReceiveResult> RunAsync(Stream input, IGatherWriter output, PreSharedKey key, Func<MemoryLayout, IMigrationTarget> createTarget,
        ReceiverOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(createTarget);
        return new ReceiverSession(input, output, key, createTarget, options ?? new ReceiverOptions(), cancellationToken).RunAsync();
    }
}
