namespace KvmPresync.Wire;

/// <summary>
/// The receiver's handshake state between answering Hello (<see cref="Handshake.AnswerHelloAsync"/>) and verifying
/// AuthProof (<see cref="Handshake.VerifyAuthProofAsync"/>): what was negotiated, and the exact transcript bytes the
/// sender's proof must cover. Nothing in it is trusted until the proof verifies.
/// </summary>
public sealed class AcceptedHello
{
    internal AcceptedHello(Hello hello, ProtocolVersion version, HelloOptions options, byte[] helloBody, ReadOnlyMemory<byte> helloAckPrefix)
    {
        Hello = hello;
        Version = version;
        Options = options;
        HelloBody = helloBody;
        HelloAckPrefix = helloAckPrefix;
    }

    /// <summary>The sender's Hello as decoded (layout, hash algorithm, offered options). Unauthenticated.</summary>
    public Hello Hello { get; }

    /// <summary>The version the session runs at (sent in HelloAck).</summary>
    public ProtocolVersion Version { get; }

    /// <summary>The options accepted in HelloAck (offered ∩ supported).</summary>
    public HelloOptions Options { get; }

    internal byte[] HelloBody { get; }

    internal ReadOnlyMemory<byte> HelloAckPrefix { get; }
}
