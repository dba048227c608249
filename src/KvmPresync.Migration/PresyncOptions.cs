using KvmPresync.Core;
using KvmPresync.Engine;
namespace KvmPresync.Migration;

/// <summary>What a <see cref="PresyncSender"/> does besides the per-round policy.</summary>
public sealed record PresyncOptions
{
    public SyncEngineOptions Engine { get; init; } = new();

    /// <summary>
    /// In-process token-bucket limit on what the sender writes, bits/s: null = the engine's link rate
    /// (<see cref="SyncEngineOptions.LinkBitsPerSecond"/>), 0 = none (the network itself shapes, e.g. tc tbf).
    /// </summary>
    public double? RateLimitBitsPerSecond { get; init; }

    /// <summary>
    /// False = classic pre-copy: nothing is sent before <see cref="PresyncSender.Launch"/>; at launch the sender
    /// iterates (whole memory first, then what was dirtied meanwhile) for up to <see cref="MaxFinalDuration"/>.
    /// </summary>
    public bool SyncBeforeLaunch { get; init; } = true;

    /// <summary>Pages per PageBatch frame.</summary>
    public int BatchPages { get; init; } = 256;

    /// <summary>At launch, live rounds continue while the remaining delta shrinks, for at most this long.</summary>
    public TimeSpan MaxFinalDuration { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>Pause once what is pending can move within this time at the link rate.</summary>
    public TimeSpan DowntimeTarget { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>How long to wait for the destination's "resumed" before resuming the source.</summary>
    public TimeSpan ResumeTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Use MSG_ZEROCOPY-capable gather sends (where available); otherwise plain gather sends.</summary>
    public bool ZeroCopy { get; init; }
}
