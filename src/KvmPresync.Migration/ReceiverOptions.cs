namespace KvmPresync.Migration;

/// <summary>How a receiver guards itself.</summary>
public sealed record ReceiverOptions
{
    /// <summary>Largest guest memory a sender may announce.</summary>
    public long MaxMemoryBytes { get; init; } = 64L << 30;

    /// <summary>Rate limit on what the receiver sends (acks), bits/s; 0 = none.</summary>
    public double LinkBitsPerSecond { get; init; }

    /// <summary>A connection silent for this long is dropped (the guest is not resumed).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Test/fuzz seam: a fixed source for the receiver's handshake nonce (null: random). With it a recorded sender
    /// stream replays into a receiver byte for byte, authentication included (fuzz/README.md). Never set in production.
    /// </summary>
    internal Func<byte[]>? HandshakeNonce { get; init; }
}
