namespace KvmPresync.Wire;

/// <summary>
/// The handshake's proofs. Each side proves it holds the key by an HMAC-SHA256 over a direction label and the
/// transcript:
/// <code>
/// proof = HMAC-SHA256(psk, label ‖ u32le(len(helloBody)) ‖ helloBody ‖ helloAckBody[0..40))
/// label = "KPSY v1 receiver proof\0"  (in HelloAck)  or  "KPSY v1 sender proof\0"  (in AuthProof)
/// </code>
/// helloBody holds the sender nonce, helloAckBody[0..40) the receiver nonce, so each proof answers the
/// other side's fresh challenge (a replay fails), and the labels differ per direction (a reflected proof fails).
/// The transcript also binds the layout, options and version, so none can be altered without failing the proof.
/// </summary>
internal static class HandshakeTranscript
{
    private static readonly ReadOnlyMemory<byte> ReceiverLabel = "KPSY v1 receiver proof\0"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> SenderLabel = "KPSY v1 sender proof\0"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> SessionLabel = "KPSY v1 session start\0"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> StreamSessionLabel = "KPSY v1 stream session\0"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> StreamJoinLabel = "KPSY v1 stream join\0"u8.ToArray();

    /// <summary>
    /// The id data connections name their session by (StreamJoin): HMAC-SHA256(psk, "KPSY v1 stream session\0" ‖ Ns ‖ Nr)[0..16).
    /// Both sides derive it from the main connection's nonces; nobody without the key can.
    /// </summary>
    public static byte[] StreamJoinId(PreSharedKey key, ReadOnlyMemory<byte> nonces)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (nonces.Length != 2 * WireLimits.NonceBytes) throw new ArgumentException($"the nonces must be {2 * WireLimits.NonceBytes} bytes (Ns ‖ Nr)", nameof(nonces));
        return key.Mac(StreamSessionLabel, nonces)[..WireLimits.SessionIdBytes];
    }

    /// <summary>
    /// StreamJoin's proof: HMAC-SHA256(psk, "KPSY v1 stream join\0" ‖ Ns ‖ Nr ‖ join id ‖ u32le index ‖ u32le streams), binding the
    /// data connection to the main connection's fresh nonces and to its stream index.
    /// </summary>
    public static byte[] StreamJoinProof(PreSharedKey key, ReadOnlyMemory<byte> nonces, ReadOnlySpan<byte> joinId, uint index, uint streams)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (nonces.Length != 2 * WireLimits.NonceBytes) throw new ArgumentException($"the nonces must be {2 * WireLimits.NonceBytes} bytes (Ns ‖ Nr)", nameof(nonces));
        if (joinId.Length != WireLimits.SessionIdBytes) throw new ArgumentException($"a join id is {WireLimits.SessionIdBytes} bytes", nameof(joinId));
        byte[] tail = new byte[WireLimits.SessionIdBytes + 8];
        joinId.CopyTo(tail);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(tail.AsSpan(WireLimits.SessionIdBytes), index);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(tail.AsSpan(WireLimits.SessionIdBytes + 4), streams);
        return key.Mac(StreamJoinLabel, nonces, tail);
    }

    /// <summary>
    /// SessionStart's proof: HMAC-SHA256(psk, "KPSY v1 session start\0" ‖ Ns ‖ Nr ‖ sessionId ‖ u32le generation). It binds the
    /// session id and generation to this connection's fresh nonces, so a recorded SessionStart is useless on another connection.
    /// </summary>
    public static byte[] SessionProof(PreSharedKey key, ReadOnlyMemory<byte> nonces, ReadOnlySpan<byte> sessionId, uint generation)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (nonces.Length != 2 * WireLimits.NonceBytes) throw new ArgumentException($"the nonces must be {2 * WireLimits.NonceBytes} bytes (Ns ‖ Nr)", nameof(nonces));
        if (sessionId.Length != WireLimits.SessionIdBytes) throw new ArgumentException($"a session id is {WireLimits.SessionIdBytes} bytes", nameof(sessionId));
        byte[] tail = new byte[WireLimits.SessionIdBytes + 4];
        sessionId.CopyTo(tail);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(tail.AsSpan(WireLimits.SessionIdBytes), generation);
        return key.Mac(SessionLabel, nonces, tail);
    }

    public static byte[] ReceiverProof(PreSharedKey key, ReadOnlyMemory<byte> helloBody, ReadOnlyMemory<byte> helloAckPrefix) =>
        Compute(key, ReceiverLabel, helloBody, helloAckPrefix);

    public static byte[] SenderProof(PreSharedKey key, ReadOnlyMemory<byte> helloBody, ReadOnlyMemory<byte> helloAckPrefix) =>
        Compute(key, SenderLabel, helloBody, helloAckPrefix);

    private static byte[] Compute(PreSharedKey key, ReadOnlyMemory<byte> label, ReadOnlyMemory<byte> helloBody, ReadOnlyMemory<byte> helloAckPrefix)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (helloAckPrefix.Length != HelloAck.TranscriptLength)
            throw new ArgumentException($"the HelloAck transcript part is {HelloAck.TranscriptLength} bytes, got {helloAckPrefix.Length}", nameof(helloAckPrefix));
        byte[] length = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(length, helloBody.Length);
        return key.Mac(label, length, helloBody, helloAckPrefix);
    }
}
