using KvmPresync.Core;
namespace KvmPresync.Engine;

/// <summary>Constants of the slow-start synchronization adaptive policy (<see cref="SyncWindow"/>). Defaults: docs/POLICIES.md.</summary>
public sealed record SyncWindowOptions
{
    /// <summary>Window of the first round, bytes.</summary>
    public long InitialWindowBytes { get; init => field = OptionGuard.Require(value, value > 0, nameof(SyncWindowOptions), "must be positive"); } = 1L << 20;

    /// <summary>The window never falls below this (bytes per round).</summary>
    public long MinWindowBytes { get; init => field = OptionGuard.Require(value, value > 0, nameof(SyncWindowOptions), "must be positive"); } = 64L << 10;

    /// <summary>The window never grows above this (bytes per round).</summary>
    public long MaxWindowBytes { get; init => field = OptionGuard.Require(value, value > 0, nameof(SyncWindowOptions), "must be positive"); } = 4L << 30;

    /// <summary>Slow-start threshold before the first decrease; long.MaxValue = grow exponentially until a pressure signal.</summary>
    public long InitialSsthreshBytes { get; init => field = OptionGuard.Require(value, value > 0, nameof(SyncWindowOptions), "must be positive"); } = long.MaxValue;

    /// <summary>Congestion avoidance: bytes added per round.</summary>
    public long AdditiveIncreaseBytes { get; init => field = OptionGuard.Require(value, value >= 0, nameof(SyncWindowOptions), "must not be negative"); } = 1L << 20;

    /// <summary>Multiplicative decrease β: window ← max(min, window × β).</summary>
    public double DecreaseFactor { get; init => field = OptionGuard.Fraction(value, nameof(SyncWindowOptions)); } = 0.5;

    /// <summary>Network pressure when the round's RTT exceeds base RTT × this factor.</summary>
    public double RttRiseFactor { get; init => field = OptionGuard.Require(value, value > 1 && !double.IsInfinity(value), nameof(SyncWindowOptions), "must be greater than 1 and finite"); } = 2.0;

    /// <summary>Network pressure when bytes acked fall below bytes sent × (1 − this).</summary>
    /// <summary>
    /// The RTT signal also needs the rise over the base RTT to exceed this absolute delay: on a sub-millisecond
    /// path a factor alone fires on scheduling jitter, not on queueing.
    /// </summary>
    public TimeSpan MinRttRise { get; init => field = OptionGuard.NotNegative(value, nameof(SyncWindowOptions)); } = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// …and to exceed this fraction of the round interval: a round's burst briefly queues window/rate at the
    /// bottleneck (e.g. tc tbf); only a queue that lasts a good part of the round means the link is overloaded.
    /// </summary>
    public double RttRiseIntervalFraction { get; init => field = OptionGuard.Require(value, value >= 0 && !double.IsInfinity(value), nameof(SyncWindowOptions), "must not be negative"); } = 0.25;

    public double GoodputShortfall { get; init => field = OptionGuard.Fraction(value, nameof(SyncWindowOptions)); } = 0.2;

    /// <summary>The goodput signal is ignored for rounds that sent fewer bytes than this.</summary>
    public long MinBytesForGoodputSignal { get; init => field = OptionGuard.Require(value, value >= 0, nameof(SyncWindowOptions), "must not be negative"); } = 64L << 10;

    /// <summary>Application slowdown when guest progress falls below baseline × (1 − this).</summary>
    public double SlowdownFraction { get; init => field = OptionGuard.Fraction(value, nameof(SyncWindowOptions)); } = 0.10;

    /// <summary>Guest progress rate (work units/s) measured without sync; null disables the slowdown signal until <see cref="SyncWindow.SetProgressBaseline"/>.</summary>
    public double? BaselineProgressRate { get; init => field = OptionGuard.Require(value, value is not { } b || b > 0 && !double.IsInfinity(b), nameof(SyncWindowOptions), "must be positive and finite, or null (measured later)"); }

    /// <summary>Rounds after a decrease during which further pressure holds the window instead of decreasing again.</summary>
    public int DecreaseHoldoffRounds { get; init => field = OptionGuard.Require(value, value >= 0, nameof(SyncWindowOptions), "must not be negative"); } = 1;

    /// <summary>The window grows only when the round sent at least this fraction of it (otherwise the sender, not the network, was the limit).</summary>
    public double AppLimitedFraction { get; init => field = OptionGuard.Require(value, value >= 0 && value <= 1, nameof(SyncWindowOptions), "must be in [0, 1]"); } = 0.5;

    /// <summary>Optional hard rate cap (bytes/s): window ≤ cap × interval.</summary>
    public double? RateCapBytesPerSecond { get; init => field = OptionGuard.Require(value, value is not { } c || c > 0, nameof(SyncWindowOptions), "must be positive, or null (no cap)"); }

    public TimeSpan InitialInterval { get; init => field = OptionGuard.Positive(value, nameof(SyncWindowOptions)); } = TimeSpan.FromMilliseconds(100);

    public TimeSpan MinInterval { get; init => field = OptionGuard.Positive(value, nameof(SyncWindowOptions)); } = TimeSpan.FromMilliseconds(50);

    public TimeSpan MaxInterval { get; init => field = OptionGuard.Positive(value, nameof(SyncWindowOptions)); } = TimeSpan.FromSeconds(2);

    /// <summary>Interval multiplier when lengthening (divisor when shortening).</summary>
    public double IntervalStep { get; init => field = OptionGuard.Require(value, value > 1 && !double.IsInfinity(value), nameof(SyncWindowOptions), "must be greater than 1 and finite"); } = 2.0;

    /// <summary>Shorten only when the round's dirty bytes were at most this fraction of the window (hysteresis).</summary>
    public double ShortenBelowFraction { get; init => field = OptionGuard.Require(value, value > 0 && value <= 1, nameof(SyncWindowOptions), "must be in (0, 1]"); } = 0.5;

    /// <summary>
    /// Whether a drained window may shorten the interval below <see cref="InitialInterval"/> (down to
    /// <see cref="MinInterval"/>). Default false: before launch, sync latency buys nothing while longer rounds coalesce
    /// rewrites and keep the predictor on the timescale it learnt (it counts rounds), so shortening only undoes an
    /// earlier lengthening.
    /// </summary>
    public bool ShortenBelowInitialInterval { get; init; }

    /// <summary>When the interval changes, scale window and ssthresh with it so the byte rate is unchanged.</summary>
    public bool ScaleWindowWithInterval { get; init; } = true;

    /// <summary>
    /// Checks across options (each option alone is checked when it is set): the window and interval bounds are ordered and
    /// the initial values lie between them. <see cref="SyncWindow"/> runs it.
    /// </summary>
    public void Validate()
    {
        static ArgumentOutOfRangeException Bad(string name, object value, string what) => new(name, value, $"SyncWindowOptions.{name} {what}, got {OptionGuard.Show(value)}");
        if (MaxWindowBytes < MinWindowBytes) throw Bad(nameof(MaxWindowBytes), MaxWindowBytes, $"must be at least MinWindowBytes ({MinWindowBytes})");
        if (InitialWindowBytes < MinWindowBytes || InitialWindowBytes > MaxWindowBytes)
            throw Bad(nameof(InitialWindowBytes), InitialWindowBytes, $"must lie between MinWindowBytes ({MinWindowBytes}) and MaxWindowBytes ({MaxWindowBytes})");
        if (InitialSsthreshBytes < MinWindowBytes) throw Bad(nameof(InitialSsthreshBytes), InitialSsthreshBytes, $"must be at least MinWindowBytes ({MinWindowBytes})");
        if (MaxInterval < MinInterval) throw Bad(nameof(MaxInterval), MaxInterval, $"must be at least MinInterval ({OptionGuard.Show(MinInterval)})");
        if (InitialInterval < MinInterval || InitialInterval > MaxInterval)
            throw Bad(nameof(InitialInterval), InitialInterval, $"must lie between MinInterval ({OptionGuard.Show(MinInterval)}) and MaxInterval ({OptionGuard.Show(MaxInterval)})");
    }
}
