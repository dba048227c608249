using System.Security.Cryptography;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// The sender's side of the resume handshake (protocol 1.1, <see cref="HelloOptions.Resumable"/>), right after AuthOk:
/// SessionStart{id, generation, proof} → SessionState, and for Resumed the receiver's page hashes (PageHashes chunks, each
/// checked to continue the previous one and to stay inside this guest's page count before anything is kept).
/// </summary>
internal static class SenderResume
{
    public static byte[] NewSessionId() => RandomNumberGenerator.GetBytes(WireLimits.SessionIdBytes);

    /// <summary>Returns the receiver's status and, for Resumed, one hash per page (linear index order).</summary>
    public static async Task<(SessionStatus Status, ulong[]? Hashes)> StartAsync(SenderChannel channel, HandshakeResult session, PreSharedKey key,
        byte[] sessionId, uint generation, long pageCount, CancellationToken ct)
    {
        byte[] proof = HandshakeTranscript.SessionProof(key, session.Nonces, sessionId, generation);
        await channel.Writer.WriteAsync(new SessionStart(sessionId, generation, proof), ct).ConfigureAwait(false);
        SessionState state = await channel.Reader.ReadExpectedAsync<SessionState>(ct).ConfigureAwait(false);
        if (generation == 0 && state.Status != SessionStatus.New)
            throw new ProtocolException(ProtocolError.InvalidField, "SessionState.status", state.Status,
                $"the receiver answered a new session (generation 0) with {state.Status}");
        if (state.Status != SessionStatus.Resumed) return (state.Status, null);
        if (state.HashCount != (ulong)pageCount)
            throw new ProtocolException(ProtocolError.InvalidField, "SessionState.hashCount", state.HashCount,
                $"the receiver resumes a session of {state.HashCount} pages; this guest has {pageCount}");
        var hashes = new ulong[pageCount];
        ulong next = 0;
        while (next < (ulong)pageCount)
        {
            PageHashes chunk = await channel.Reader.ReadExpectedAsync<PageHashes>(ct).ConfigureAwait(false);
            if (chunk.FirstIndex != next || (ulong)chunk.Hashes.Length > (ulong)pageCount - next)
                throw new ProtocolException(ProtocolError.InvalidField, "PageHashes.firstIndex", chunk.FirstIndex,
                    $"PageHashes: {chunk.Hashes.Length} hashes from index {chunk.FirstIndex}, expected a chunk from {next} within {pageCount} pages");
            chunk.Hashes.Span.CopyTo(hashes.AsSpan((int)next));
            next += (ulong)chunk.Hashes.Length;
        }
        return (state.Status, hashes);
    }
}
