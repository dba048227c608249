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
}
