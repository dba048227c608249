namespace KvmPresync.Wire;

/// <summary>What the sender offers in Hello.</summary>
public sealed record SenderHandshakeOptions(MemoryLayout Layout, PageHashAlgorithm HashAlgorithm, HelloOptions Options)
{
    /// <summary>Version announced; <see cref="ProtocolVersion.Current"/> unless a test needs another.</summary>
    public ProtocolVersion Version { get; init; } = ProtocolVersion.Current;
}

/// <summary>What the receiver accepts.</summary>
public sealed record ReceiverHandshakeOptions
{
    public ProtocolVersion Version { get; init; } = ProtocolVersion.Current;

    /// <summary>Hash algorithms this receiver can verify.</summary>
    public IReadOnlyCollection<PageHashAlgorithm> HashAlgorithms
    {
        get;
        init => field = (value ?? throw new ArgumentNullException(nameof(HashAlgorithms), "ReceiverHandshakeOptions.HashAlgorithms must not be null")).Count > 0 ? value
            : throw new ArgumentException("ReceiverHandshakeOptions.HashAlgorithms must name at least one algorithm (a receiver that verifies none refuses every sender)", nameof(HashAlgorithms));
    } = [PageHashAlgorithm.XxHash64, PageHashAlgorithm.XxHash3, PageHashAlgorithm.PageHasher];

    /// <summary>Options this receiver supports; the session uses the intersection with what the sender offers.</summary>
    public HelloOptions SupportedOptions { get; init; } = HelloOptions.All;

    /// <summary>
    /// Checks the announced layout against the destination (e.g. same slots as the VM it created); returns
    /// null to accept or a reason to refuse (sent to the sender in an Abort). Null accepts any valid layout.
    /// </summary>
    public Func<MemoryLayout, string?>? ValidateLayout { get; init; }

    /// <summary>
    /// Test/fuzz seam: where the receiver's nonce comes from (null: <see cref="System.Security.Cryptography.RandomNumberGenerator"/>).
    /// A fixed nonce makes the whole handshake deterministic, so a recorded byte stream authenticates again when replayed
    /// (the fuzz harness and the property tests use it). Never set in production: a repeated nonce allows replaying a handshake.
    /// </summary>
    internal Func<byte[]>? NonceSource { get; init; }
}

/// <summary>What both sides agreed on; the reader and writer are bound to it when the handshake returns.</summary>
public sealed record HandshakeResult(ProtocolVersion Version, MemoryLayout Layout, PageHashAlgorithm HashAlgorithm, HelloOptions Options)
{
    /// <summary>This connection's nonces, sender's then receiver's (64 bytes): what a SessionStart proof binds to.</summary>
    public ReadOnlyMemory<byte> Nonces { get; init; }
}
