namespace KvmPresync.Engine.Convergence;

/// <summary>What a <see cref="IConvergencePolicy"/> sees after each harvest following launch.</summary>
public readonly record struct ConvergenceInput
{
    /// <summary>Wire bytes pending now (everything the destination lacks, held-back pages included).</summary>
    public required long PendingBytes { get; init; }

    /// <summary>Wire bytes pending at the previous decision after launch; null at the first.</summary>
    public long? PreviousPendingBytes { get; init; }

    /// <summary>Bytes the guest dirtied per second over the last harvest interval.</summary>
    public required double DirtyBytesPerSecond { get; init; }

    /// <summary>
    /// The guest's usual dirty rate, bytes per second: the mean over the sync period's last rounds (0 when unknown). A last
    /// interval far above it is a burst; far below it, a quiet moment.
    /// </summary>
    public double MeanDirtyBytesPerSecond { get; init; }

    /// <summary>
    /// The guest's working-set curve as measured during sync (<see cref="DirtyRateMeter.WorkingSet"/>, with its short-window
    /// point); null when not measured. What <see cref="ExpectedDirtyBytes"/> reads before the last interval's rate.
    /// </summary>
    public DirtyWorkingSet? WorkingSet { get; init; }

    /// <summary>
    /// When the guest's bursts of writes come (the sender's <see cref="BurstClock"/> while they are periodic); null when not
    /// timed. What <see cref="ExpectedDirtyBytes"/> reads first.
    /// </summary>
    public BurstTimedWrites? Bursts { get; init; }

    /// <summary>Harvest-clock time of this decision (where the windows of <see cref="ExpectedDirtyBytes"/> start for <see cref="Bursts"/>).</summary>
    public TimeSpan Now { get; init; }

    /// <summary>Harvest clock since the policy first waited for a quiet moment (null when it has not waited).</summary>
    public TimeSpan? WaitingForQuietFor { get; init; }

    /// <summary>The link's rate, bits per second.</summary>
    public required double LinkBitsPerSecond { get; init; }

    /// <summary>
    /// What pages move at while the guest runs, bits per second, when measured lower than <see cref="LinkBitsPerSecond"/> (the
    /// CPU shared by the running guest, the sender and the receiver bounds it); null = the link rate. How long another live
    /// round lasts (<see cref="LiveRoundTime"/>). The policy's rules take a paused delta at the link rate; the readiness estimate and the
    /// sender's check of a round that stops at the target, at the paused rate (<see cref="ReadinessInputs.PausedTransferBitsPerSecond"/>).
    /// </summary>
    public double? LiveTransferBitsPerSecond { get; init; }

    /// <summary>Last measured round-trip time, if any (the live sender measures it from sync-round acks).</summary>
    public TimeSpan? Rtt { get; init; }

    /// <summary>Harvest clock since the first harvest after launch (0 at the first decision).</summary>
    public required TimeSpan SinceLaunch { get; init; }

    /// <summary>The launch-to-resume target the run was configured with.</summary>
    public required TimeSpan LaunchTarget { get; init; }

    /// <summary>Final live rounds already sent since launch.</summary>
    public required int LiveRounds { get; init; }

    /// <summary>Time the link needs to move <see cref="PendingBytes"/>.</summary>
    public TimeSpan PendingTransferTime => TransferTime(PendingBytes);

    /// <summary>
    /// How long a live round moving <see cref="PendingBytes"/> lasts: at <see cref="LiveTransferBitsPerSecond"/> where measured
    /// lower than the link rate, else at the link rate.
    /// </summary>
    public TimeSpan LiveRoundTime => TimeSpan.FromSeconds(PendingBytes * 8 / LiveRate(LiveTransferBitsPerSecond, LinkBitsPerSecond));

    /// <summary>
    /// The rate live rounds move at, bits per second: <paramref name="measured"/> where it is a positive, finite rate below
    /// <paramref name="link"/>, else the link's (what the sender measures is what moved, never more than the link allows).
    /// The one rule the engine's live rate, the policy's round time and the readiness estimate share.
    /// </summary>
    public static double LiveRate(double? measured, double link) =>
        measured is { } m && m > 0 && double.IsFinite(m) && m < link ? m : link;

    /// <summary>
    /// Distinct bytes the guest is expected to dirty within <paramref name="window"/> from now: from its timed bursts when it
    /// has them, else from its working-set curve when measured (a burst that filled the last short interval says little about
    /// the next one), else the last interval's rate.
    /// </summary>
    public double ExpectedDirtyBytes(TimeSpan window) =>
        Bursts is { } bursts ? bursts.BytesWithin(Now, window)
        : WorkingSet is { HasShortWindow: true } curve ? curve.BytesWithin(window) : DirtyBytesPerSecond * Math.Max(0, window.TotalSeconds);

    /// <summary>Time the link needs to move <paramref name="bytes"/>.</summary>
    public TimeSpan TransferTime(double bytes) => TimeSpan.FromSeconds(bytes * 8 / LinkBitsPerSecond);
}
