using KvmPresync.Core;
using KvmPresync.Memory;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>How a receiver guards itself.</summary>
public sealed record ReceiverOptions
{
    /// <summary>Largest guest memory a sender may announce (checked at Hello, before authentication).</summary>
    public long MaxMemoryBytes { get; init => field = OptionGuard.Require(value, value > 0, nameof(ReceiverOptions), "must be positive"); } = 64L << 30;

    /// <summary>Rate limit on what the receiver sends (acks), bits/s; 0 = none.</summary>
    public double LinkBitsPerSecond { get; init => field = OptionGuard.Require(value, value >= 0 && !double.IsInfinity(value), nameof(ReceiverOptions), "must be 0 (none) or a positive, finite number of bits per second"); }

    /// <summary>The whole handshake (Hello through AuthProof) must arrive within this time of the connection (slow peers are dropped).</summary>
    public TimeSpan HandshakeTimeout { get; init => field = OptionGuard.Positive(value, nameof(ReceiverOptions)); } = TimeSpan.FromSeconds(10);

    /// <summary>After the handshake, each frame must arrive (whole) within this time of the previous one; the guest is not resumed otherwise.</summary>
    public TimeSpan IdleTimeout { get; init => field = OptionGuard.Positive(value, nameof(ReceiverOptions)); } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Mutual TLS 1.3 (null = plaintext): the sender must open TLS and present a certificate this side trusts, before
    /// the PSK handshake runs inside the channel. A plaintext sender is refused (with a plaintext Abort saying so), and
    /// a plaintext receiver refuses a TLS sender.
    /// </summary>
    public TlsOptions? Tls { get; init; }

    /// <summary>
    /// The destinations this receiver creates take the guest's device state by a path of their own (libvirt domains,
    /// <see cref="KvmPresync.Core.IDeviceStateHandoverTarget"/>): the receiver offers protocol 1.2's DeferredHandover and
    /// refuses senders that do not take it (they could not hand the device state over).
    /// </summary>
    public bool DeviceStateHandover { get; init; }

    /// <summary>
    /// Tracks the pages written to a destination's memory (given its map, once the destination is created), e.g. userfaultfd
    /// async write protection + PAGEMAP_SCAN on this process's own mapping (<c>KvmPresync.ProcessMemory.GuestMemoryWriteTracker</c>).
    /// With it every page written since the previous scan is hashed again at each RoundEnd and at the switchover, so a page
    /// changed on the destination after it landed — by anything writing through that mapping — fails the digest. Null: the
    /// digest is over the pages as they landed (a change after landing goes unseen). Disposed (if disposable) after the
    /// switchover or with the destination.
    /// </summary>
    public Func<GuestMemoryMap, IDirtyPageSource>? TrackWrites { get; init; }

    /// <summary>
    /// Test/fuzz seam: a fixed source for the receiver's handshake nonce (null: random). With it a recorded sender
    /// stream replays into a receiver byte for byte, authentication included (fuzz/README.md). Never set in production.
    /// </summary>
    internal Func<byte[]>? HandshakeNonce { get; init; }

    /// <summary>Test seam: the protocol version this receiver speaks (null: <see cref="ProtocolVersion.Current"/>), to act as an older peer.</summary>
    internal ProtocolVersion? Version { get; init; }

}
