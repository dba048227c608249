using KvmPresync.Wire;

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
    /// Mutual TLS 1.3 (null = plaintext): the sender must open TLS and present a certificate this side trusts, before
    /// the PSK handshake runs inside the channel. A plaintext sender is refused (with a plaintext Abort saying so), and
    /// a plaintext receiver refuses a TLS sender.
    /// </summary>
    public TlsOptions? Tls { get; init; }
}
