using KvmPresync.Wire;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration.Compression;
namespace KvmPresync.Migration;

/// <summary>What a <see cref="PresyncSender"/> does besides the per-round policy.</summary>
public sealed record PresyncOptions
{
    public SyncEngineOptions Engine { get; init => field = OptionGuard.NotNull(value, nameof(PresyncOptions)); } = new();

    /// <summary>
    /// In-process token-bucket limit on what the sender writes, bits/s: null = the engine's link rate
    /// (<see cref="SyncEngineOptions.LinkBitsPerSecond"/>), 0 = none (the network itself shapes, e.g. tc tbf).
    /// </summary>
    public double? RateLimitBitsPerSecond { get; init => field = OptionGuard.Require(value, value is not { } r || r >= 0 && !double.IsInfinity(r), nameof(PresyncOptions), "must be 0 (none), positive and finite, or null (the engine's link rate)"); }

    /// <summary>
    /// False = classic pre-copy: nothing is sent before <see cref="PresyncSender.Launch"/>; at launch the sender
    /// iterates (whole memory first, then what was dirtied meanwhile) as the engine's convergence policy allows
    /// (<see cref="SyncEngineOptions.Convergence"/>).
    /// </summary>
    public bool SyncBeforeLaunch { get; init; } = true;

    /// <summary>
    /// The readiness estimate's fixed switchover cost besides the RTT and the bytes: pausing the vCPUs, saving their state,
    /// the destination's verification, restore and start. The default is what this switchover measures on a 2-core
    /// software-virtualized host (docs/POLICIES.md, "Readiness"); <c>estimate</c> against <c>actual</c> in every result
    /// (<see cref="MigrationResult.ReadinessAtLaunch"/>) shows whether it fits a host.
    /// </summary>
    public TimeSpan SwitchoverCost { get; init => field = OptionGuard.NotNegative(value, nameof(PresyncOptions)); } = TimeSpan.FromMilliseconds(3);

    /// <summary>
    /// Every other sync round, two extra harvests a short window apart (at a random moment of the round's idle time) measure
    /// what the guest dirties at the time scale of a live round: its working-set curve, which the readiness estimate and the
    /// convergence policy read (<see cref="DirtyRateMeter.WorkingSet"/>). The pages they take go back into the next harvest.
    /// Off: both work from the sync rounds' rate alone, as the simulator does (it cannot probe a recorded trace).
    /// </summary>
    public bool ProbeWorkingSet { get; init; } = true;

    /// <summary>
    /// Time a bursty guest's writes (<see cref="BurstClock"/>): where the source's dirty log can be looked at without a
    /// harvest (<see cref="Core.IDirtyPagePeek"/>: KVM's), a thread looks every millisecond from the start of sync to the
    /// pause, and while the guest's bursts are periodic (a frame every 40 ms) the convergence policy and the readiness
    /// estimate expect its writes when they come, not spread evenly. Off: the working-set curve alone, as the simulator does.
    /// </summary>
    public bool TimeBursts { get; init; } = true;

    /// <summary>Pages per PageBatch frame.</summary>
    public int BatchPages { get; init => field = OptionGuard.Require(value, value is >= 1 and <= WireLimits.MaxPagesPerBatch, nameof(PresyncOptions), $"must be between 1 and {WireLimits.MaxPagesPerBatch}"); } = 256;

    /// <summary>How long to wait for the destination's "resumed" before resuming the source.</summary>
    public TimeSpan ResumeTimeout { get; init => field = OptionGuard.Positive(value, nameof(PresyncOptions)); } = TimeSpan.FromSeconds(15);

    /// <summary>Device-state handover (libvirt sources): how long after launch the destination may take to be ready for it.</summary>
    public TimeSpan DestinationReadyTimeout { get; init => field = OptionGuard.Positive(value, nameof(PresyncOptions)); } = TimeSpan.FromSeconds(60);

    /// <summary>Device-state handover: how long after Resumed the handover itself (libvirt's Finish/Confirm) may take.</summary>
    public TimeSpan HandoverTimeout { get; init => field = OptionGuard.Positive(value, nameof(PresyncOptions)); } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// PageBatch payload compression (protocol 1.3, CompressedPages): Off (the library default), Auto (per batch raw / LZ4 /
    /// zstd by measured ratio, compress speed and link rate; the CLI default) or a fixed codec. With <see cref="ZeroCopy"/>
    /// every batch stays raw (a compressed batch is a copy); a fixed codec with zero-copy is refused.
    /// </summary>
    public CompressionMode Compression { get; init => field = OptionGuard.Require(value, Enum.IsDefined(value), nameof(PresyncOptions), "must be a defined CompressionMode"); } = CompressionMode.Off;

    /// <summary>What a user is told when a fixed codec and <see cref="ZeroCopy"/> are both asked for.</summary>
    public const string CompressionWithZeroCopyRefused =
        "--compression lz4/zstd cannot be combined with --zero-copy: a compressed batch is built in a buffer of its own, so no guest page " +
        "is left to send in place; use --compression auto or off with --zero-copy (zero-copy sends stay raw)";

    /// <summary>Use MSG_ZEROCOPY-capable gather sends (where available); otherwise plain gather sends.</summary>
    public bool ZeroCopy { get; init; }

    /// <summary>
    /// Mutual TLS 1.3 around the connection (null = plaintext, authenticated by the PSK handshake only). The PSK
    /// handshake still runs inside TLS. Cannot be combined with <see cref="ZeroCopy"/>: SslStream encrypts into its own
    /// buffers, so no guest page is left to send in place.
    /// </summary>
    public TlsOptions? Tls { get; init; }

    /// <summary>What a user is told when <see cref="ZeroCopy"/> and <see cref="Tls"/> are both asked for.</summary>
    public const string ZeroCopyWithTlsRefused =
        "zero-copy (MSG_ZEROCOPY) cannot be combined with TLS: TLS encrypts every page into its own buffer before it is sent, " +
        "so there is no guest page left to send in place; drop --zero-copy (TLS sends go through SslStream) or drop TLS on a trusted link";

    /// <summary>
    /// Resumable presync (protocol 1.1): when the connection is lost during sync, keep the guest running, reconnect with
    /// backoff and resume the receiver's session, resending only what it lacks. Null: a lost connection fails the migration.
    /// </summary>
    public ReconnectOptions? Reconnect { get; init; }

    /// <summary>
    /// TCP connections the migration uses (protocol 1.3 MultiStream), the authenticated main connection included: 1 = one
    /// connection as before. The data connections join the main one's session and carry their stripes of the page space;
    /// the receiver must accept MultiStream (a receive service does), otherwise the sender uses one stream and says so.
    /// After a reconnection (<see cref="Reconnect"/>) the migration continues on one stream.
    /// </summary>
    public int Streams { get; init => field = OptionGuard.Require(value, value is >= 1 and <= WireLimits.MaxStreams, nameof(PresyncOptions), $"must be between 1 and {WireLimits.MaxStreams} (the main connection included)"); } = 1;

    /// <summary>
    /// How the source's memory digest is computed at the switchover: <see cref="VerifyMode.Delta"/> (default) from the hashes
    /// of what was sent, O(delta), trusting the dirty log; <see cref="VerifyMode.Full"/> re-hashes all paused memory, O(memory),
    /// and so also re-verifies the dirty tracking itself.
    /// </summary>
    public VerifyMode Verify { get; init => field = OptionGuard.Require(value, Enum.IsDefined(value), nameof(PresyncOptions), "must be Delta or Full"); } = VerifyMode.Delta;

    /// <summary>
    /// The guest's work over a window just before presync, measured by the caller with nothing sent
    /// (<see cref="GuestWindow.MeasureAsync"/>); when given, the result reports the guest's slowdown during presync
    /// against it (<see cref="MigrationResult.GuestSlowdown"/>).
    /// </summary>
    public GuestWindow? Baseline { get; init; }

    /// <summary>
    /// Checks across options (each option alone is checked when it is set): zero-copy with TLS or a fixed codec, and the
    /// nested options' own cross checks. <see cref="PresyncSender"/> runs it.
    /// </summary>
    public void Validate()
    {
        if (Engine.LaunchTarget <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(SyncEngineOptions.LaunchTarget), Engine.LaunchTarget,
                $"PresyncOptions.Engine.LaunchTarget must be positive for a live migration (zero is for simulation only), got {OptionGuard.Show(Engine.LaunchTarget)}");
        if (ZeroCopy && Tls is not null) throw new ArgumentException(ZeroCopyWithTlsRefused, nameof(ZeroCopy));
        if (ZeroCopy && Compression is CompressionMode.Lz4 or CompressionMode.Zstd) throw new ArgumentException(CompressionWithZeroCopyRefused, nameof(Compression));
        Engine.Window.Validate();
        Reconnect?.Validate();
    }
}
