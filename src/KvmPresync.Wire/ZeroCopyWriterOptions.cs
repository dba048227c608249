namespace KvmPresync.Wire;

/// <summary>How a <see cref="ZeroCopySocketWriter"/> sends.</summary>
public sealed record ZeroCopyWriterOptions
{
    /// <summary>
    /// 16 KiB: below this, pinning pages and reaping a completion costs more than the kernel's copy (the kernel
    /// documentation puts the break-even "around 10 KB"; a PageBatch of 256 pages is 1 MiB, far above).
    /// </summary>
    public const int DefaultZeroCopyThreshold = 16 * 1024;

    /// <summary>
    /// Send page payloads with MSG_ZEROCOPY (SO_ZEROCOPY is enabled on the socket; Linux ≥ 4.14, TCP).
    /// Off: every byte is copied into the socket buffer by the kernel — still with no copy in user space.
    /// </summary>
    public bool ZeroCopy { get; init; }

    /// <summary>A stretch of adjacent native-memory runs is sent with MSG_ZEROCOPY only when it holds at least this many bytes.</summary>
    public int ZeroCopyThreshold
    {
        get;
        init => field = value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(ZeroCopyThreshold), value, $"ZeroCopyWriterOptions.ZeroCopyThreshold must not be negative, got {value}");
    } = DefaultZeroCopyThreshold;

    /// <summary>Optional link rate: each frame reserves tokens for all its bytes before its first send.</summary>
    public TokenBucket? RateLimit { get; init; }
}
