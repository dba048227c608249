using System.Security.Cryptography;

namespace KvmPresync.Wire;

/// <summary>
/// Version negotiation and mutual authentication, before any memory frame:
/// <code>
/// sender                                   receiver
///   Hello {version, layout, hash, options, Ns}  →
///                                          ← HelloAck {version, options, Nr, receiverProof}   (or Abort)
///   verify receiverProof
///   AuthProof {senderProof}                 →
///                                          verify senderProof
///                                          ← AuthOk                                            (or Abort)
/// </code>
/// Proofs: <see cref="HandshakeTranscript"/>, compared in constant time. A failed proof on either side sends
/// Abort(AuthenticationFailed) to the peer and throws <see cref="AuthenticationFailedException"/> (not
/// retryable). The receiver side is either one call (<see cref="RunReceiverAsync"/>) or, for a receiver that runs
/// one <see cref="ReceiverFrameGate"/> over the whole connection, two steps it calls per gated frame
/// (<see cref="AnswerHelloAsync"/>, <see cref="VerifyAuthProofAsync"/>). After the handshake the stream is NOT integrity-protected: an active man-in-the-middle can
/// alter frames (see docs/PROTOCOL.md, "Security").
/// </summary>
public static class Handshake
{
    public static async Task<HandshakeResult> RunSenderAsync(FrameReader reader, FrameWriter writer, SenderHandshakeOptions options,
        PreSharedKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(key);

        byte[] senderNonce = RandomNumberGenerator.GetBytes(WireLimits.NonceBytes);
        var hello = new Hello(options.Version, options.Layout, options.HashAlgorithm, options.Options, senderNonce);
        byte[] helloBody = new byte[hello.BodyLength];
        hello.Write(helloBody);
        await writer.WriteAsync(hello, cancellationToken).ConfigureAwait(false);

        FrameHeader header = await reader.ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
        if (header.Type == FrameType.Abort)
            throw (await reader.ReadBodyAsync<Abort>(header, cancellationToken).ConfigureAwait(false)).ToException();
        if (header.Type != FrameType.HelloAck)
            throw await FailAsync(writer, AbortReason.ProtocolViolation, new ProtocolException(ProtocolError.UnexpectedFrame, "FrameHeader.type",
                header.Type, $"handshake: expected HelloAck, the receiver sent {header.Type}"), cancellationToken).ConfigureAwait(false);
        byte[] ackBody = await reader.ReadRawBodyAsync(header, cancellationToken).ConfigureAwait(false);
        HelloAck ack;
        try
        {
            ack = HelloAck.Read(ackBody);
        }
        catch (ProtocolException e)
        {
            throw await FailAsync(writer, AbortReason.ProtocolViolation, e, cancellationToken).ConfigureAwait(false);
        }

        if (ack.AcceptedVersion.Major != options.Version.Major || ack.AcceptedVersion.Minor > options.Version.Minor)
            throw await FailAsync(writer, AbortReason.VersionMismatch, new ProtocolException(ProtocolError.NegotiationFailed, "HelloAck.version",
                ack.AcceptedVersion, $"handshake: the receiver accepted version {ack.AcceptedVersion}, the sender offered {options.Version}"),
                cancellationToken).ConfigureAwait(false);
        if ((ack.AcceptedOptions & ~options.Options) != 0)
            throw await FailAsync(writer, AbortReason.UnsupportedOption, new ProtocolException(ProtocolError.NegotiationFailed, "HelloAck.acceptedOptions",
                ack.AcceptedOptions, $"handshake: the receiver accepted options {ack.AcceptedOptions}, the sender offered only {options.Options}"),
                cancellationToken).ConfigureAwait(false);

        ReadOnlyMemory<byte> ackPrefix = ackBody.AsMemory(0, HelloAck.TranscriptLength);
        if (ack.ReceiverNonce.Span.SequenceEqual(senderNonce))
            throw await FailAsync(writer, AbortReason.AuthenticationFailed, new AuthenticationFailedException("HelloAck.receiverNonce",
                "handshake: the receiver's nonce equals ours — a reflected handshake, refusing"), cancellationToken).ConfigureAwait(false);
        byte[] expected = HandshakeTranscript.ReceiverProof(key, helloBody, ackPrefix);
        if (!CryptographicOperations.FixedTimeEquals(expected, ack.ReceiverProof.Span))
            throw await FailAsync(writer, AbortReason.AuthenticationFailed, new AuthenticationFailedException("HelloAck.receiverProof",
                "handshake: the receiver's proof did not verify — it holds a different pre-shared key, or the HelloAck was replayed or forged"),
                cancellationToken).ConfigureAwait(false);

        await writer.WriteAsync(new AuthProof(HandshakeTranscript.SenderProof(key, helloBody, ackPrefix)), cancellationToken).ConfigureAwait(false);
        try
        {
            await reader.ReadExpectedAsync<AuthOk>(cancellationToken).ConfigureAwait(false);
        }
        catch (ProtocolException e) when (!e.FromPeerAbort && !e.IsRetryable)
        {
            throw await FailAsync(writer, AbortReason.ProtocolViolation, e, cancellationToken).ConfigureAwait(false);
        }

        var result = new HandshakeResult(ack.AcceptedVersion, options.Layout, options.HashAlgorithm, ack.AcceptedOptions)
        {
            Nonces = (byte[])[.. senderNonce, .. ack.ReceiverNonce.Span],
        };
        reader.UseSession(result.Layout, result.Options);
        writer.UseSession(result.Layout, result.Options);
        return result;
    }

    /// <summary>
    /// The whole receiver side in one call, driven by a <see cref="ReceiverFrameGate"/> from the first byte: reads
    /// and gates each frame, answers Hello (<see cref="AnswerHelloAsync"/>) and verifies AuthProof
    /// (<see cref="VerifyAuthProofAsync"/>). On a refusal it sends the peer an Abort with the cause (not for the
    /// peer's own Abort, nor for a transport failure) and throws. A receiver that goes on to receive memory drives
    /// the steps itself with the same gate it uses for the rest of the connection.
    /// </summary>
    public static async Task<HandshakeResult> RunReceiverAsync(FrameReader reader, FrameWriter writer, ReceiverHandshakeOptions options,
        PreSharedKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(key);

        var gate = new ReceiverFrameGate();
        try
        {
            AcceptedHello hello = await AnswerHelloAsync(reader, writer, await NextGatedHeaderAsync(reader, gate, cancellationToken).ConfigureAwait(false),
                options, key, cancellationToken).ConfigureAwait(false);
            return await VerifyAuthProofAsync(reader, writer, await NextGatedHeaderAsync(reader, gate, cancellationToken).ConfigureAwait(false),
                hello, key, cancellationToken).ConfigureAwait(false);
        }
        catch (ProtocolException e) when (!e.FromPeerAbort && !e.IsRetryable)
        {
            gate.MarkAborted();
            throw await FailAsync(writer, e.AbortReason == AbortReason.Invalid ? AbortReason.ProtocolViolation : e.AbortReason, e, cancellationToken)
                .ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Receiver step for a Hello whose header was just read and accepted by the gate (phase AwaitHello): decodes and
    /// checks it (version, hash algorithm, layout) and answers HelloAck with this side's nonce and proof.
    /// Allocates nothing but the Hello body (its length was capped by the header check).
    /// Throws a <see cref="ProtocolException"/> whose <see cref="ProtocolException.AbortReason"/> is what to tell the
    /// peer; it does not send the Abort itself (the caller does, once).
    /// </summary>
    public static async Task<AcceptedHello> AnswerHelloAsync(FrameReader reader, FrameWriter writer, FrameHeader header,
        ReceiverHandshakeOptions options, PreSharedKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(key);
        if (header.Type != FrameType.Hello)
            throw new ArgumentException($"AnswerHelloAsync handles a Hello frame, not a {header.Type}", nameof(header));

        byte[] helloBody = await reader.ReadRawBodyAsync(header, cancellationToken).ConfigureAwait(false);
        Hello hello;
        try
        {
            hello = Hello.Read(helloBody);
        }
        catch (ProtocolException e)
        {
            AbortReason reason = e.Error switch
            {
                ProtocolError.VersionMismatch => AbortReason.VersionMismatch,
                ProtocolError.UnknownHashAlgorithm => AbortReason.UnsupportedHashAlgorithm,
                ProtocolError.UnknownOption => AbortReason.UnsupportedOption,
                ProtocolError.BadPageSize or ProtocolError.TooManySlots or ProtocolError.SlotMisaligned or ProtocolError.SlotOverlap
                    or ProtocolError.SlotSizeInvalid or ProtocolError.LayoutTooLarge or ProtocolError.DuplicateSlotId => AbortReason.LayoutRejected,
                _ => AbortReason.ProtocolViolation,
            };
            throw new ProtocolException(e.Error, e.Field, e.Value, e.Message, e.InnerException) { AbortReason = reason };
        }

        ProtocolVersion version = ProtocolVersion.Negotiate(options.Version, hello.Version)
            ?? throw new ProtocolException(ProtocolError.VersionMismatch, "Hello.versionMajor", hello.Version.Major,
                $"handshake: sender speaks protocol {hello.Version}, this receiver speaks {options.Version}") { AbortReason = AbortReason.VersionMismatch };
        if (!options.HashAlgorithms.Contains(hello.HashAlgorithm))
            throw new ProtocolException(ProtocolError.NegotiationFailed, "Hello.hashAlgorithm", hello.HashAlgorithm,
                $"handshake: this receiver does not verify {hello.HashAlgorithm} page hashes (it supports {string.Join(", ", options.HashAlgorithms)})")
                { AbortReason = AbortReason.UnsupportedHashAlgorithm };
        if (options.ValidateLayout?.Invoke(hello.Layout) is { } refusal)
            throw new ProtocolException(ProtocolError.LayoutRejected, "Hello.slots", hello.Layout.ToString(),
                $"handshake: the announced layout ({hello.Layout}) was refused: {refusal}") { AbortReason = AbortReason.LayoutRejected };

        HelloOptions accepted = hello.Options & options.SupportedOptions;
        if (version.Minor < ProtocolVersion.Resumable.Minor) accepted &= ~HelloOptions.Resumable; // a 1.0 session has no session frames
        if (version.Minor < ProtocolVersion.DeferredHandover.Minor) accepted &= ~HelloOptions.DeferredHandover; // nor DestinationReady before 1.2
        if (version.Minor < ProtocolVersion.CompressedPages.Minor) accepted &= ~HelloOptions.CompressedPages; // the codec field was reserved before 1.3
        if (version.Minor < ProtocolVersion.MultiStream.Minor) accepted &= ~HelloOptions.MultiStream; // nor data streams before 1.3
        if (version.Minor < ProtocolVersion.TreeDigest.Minor) accepted &= ~HelloOptions.TreeDigest; // nor the tree digest before 1.3
        byte[] receiverNonce = options.NonceSource?.Invoke() ?? RandomNumberGenerator.GetBytes(WireLimits.NonceBytes);
        if (receiverNonce.Length != WireLimits.NonceBytes)
            throw new InvalidOperationException($"the receiver's nonce source gave {receiverNonce.Length} bytes, not {WireLimits.NonceBytes}");
        byte[] ackTemplate = new byte[HelloAck.Length];
        new HelloAck(version, accepted, receiverNonce, new byte[WireLimits.MacBytes]).Write(ackTemplate);
        ReadOnlyMemory<byte> ackPrefix = ackTemplate.AsMemory(0, HelloAck.TranscriptLength);
        byte[] receiverProof = HandshakeTranscript.ReceiverProof(key, helloBody, ackPrefix);
        await writer.WriteAsync(new HelloAck(version, accepted, receiverNonce, receiverProof), cancellationToken).ConfigureAwait(false);
        return new AcceptedHello(hello, version, accepted, helloBody, ackPrefix);
    }

    /// <summary>
    /// Receiver step for an AuthProof whose header was just read and accepted by the gate (phase AwaitAuthProof):
    /// verifies the sender's proof in constant time, answers AuthOk and binds the negotiated session to the reader and
    /// writer (only now can PageBatch frames be decoded). A proof that does not verify throws
    /// <see cref="AuthenticationFailedException"/> (its message names no detail beyond "did not verify"); the caller
    /// sends the Abort.
    /// </summary>
    public static async Task<HandshakeResult> VerifyAuthProofAsync(FrameReader reader, FrameWriter writer, FrameHeader header,
        AcceptedHello hello, PreSharedKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(hello);
        ArgumentNullException.ThrowIfNull(key);
        if (header.Type != FrameType.AuthProof)
            throw new ArgumentException($"VerifyAuthProofAsync handles an AuthProof frame, not a {header.Type}", nameof(header));

        AuthProof proof = await reader.ReadBodyAsync<AuthProof>(header, cancellationToken).ConfigureAwait(false);
        byte[] expected = HandshakeTranscript.SenderProof(key, hello.HelloBody, hello.HelloAckPrefix);
        if (!CryptographicOperations.FixedTimeEquals(expected, proof.SenderProof.Span))
            throw new AuthenticationFailedException("AuthProof.senderProof",
                "handshake: the sender's proof did not verify — it holds a different pre-shared key, or the proof was replayed or reflected");
        await writer.WriteAsync(default(AuthOk), cancellationToken).ConfigureAwait(false);

        var result = new HandshakeResult(hello.Version, hello.Hello.Layout, hello.Hello.HashAlgorithm, hello.Options)
        {
            Nonces = (byte[])[.. hello.Hello.SenderNonce.Span, .. hello.HelloAckPrefix.Span.Slice(8, WireLimits.NonceBytes)],
        };
        reader.UseSession(result.Layout, result.Options);
        writer.UseSession(result.Layout, result.Options);
        return result;
    }

    /// <summary>Reads the next header and gates it; a peer's Abort is thrown as its exception.</summary>
    private static async Task<FrameHeader> NextGatedHeaderAsync(FrameReader reader, ReceiverFrameGate gate, CancellationToken cancellationToken)
    {
        FrameHeader header = await reader.ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
        if (gate.Accept(header.Type) == ReceiverPhase.Aborted)
            throw (await reader.ReadBodyAsync<Abort>(header, cancellationToken).ConfigureAwait(false)).ToException();
        return header;
    }

    /// <summary>Tells the peer why (best effort: it may already be gone) and returns the exception to throw.</summary>
    private static async Task<ProtocolException> FailAsync(FrameWriter writer, AbortReason reason, ProtocolException error, CancellationToken cancellationToken)
    {
        try
        {
            await writer.WriteAsync(new Abort(reason, error.Message), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ProtocolException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The connection is already broken; the original error is what matters.
        }
        return error;
    }
}
