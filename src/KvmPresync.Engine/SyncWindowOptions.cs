using KvmPresync.Core;
namespace KvmPresync.Engine;

/// <summary>Constants of the slow-start synchronization adaptive policy (<see cref="SyncWindow"/>). Defaults: docs/POLICIES.md.</summary>
public sealed record SyncWindowOptions
{
    /// <summary>Window of the first round, bytes.</summary>
    public long InitialWindowBytes { get; init; } = 1L << 20;

    /// <summary>The window never falls below this (bytes per round).</summary>
    public long MinWindowBytes { get; init; } = 64L << 10;

    /// <summary>The window never grows above this (bytes per round).</summary>
    public long MaxWindowBytes { get; init; } = 4L << 30;

    /// <summary>Slow-start threshold before the first decrease; long.MaxValue = grow exponentially until a pressure signal.</summary>
    public long InitialSsthreshBytes { get; init; } = long.MaxValue;

    /// <summary>Congestion avoidance: bytes added per round.</summary>
    public long AdditiveIncreaseBytes { get; init; } = 1L << 20;

    /// <summary>Multiplicative decrease β: window ← max(min, window × β).</summary>
    public double DecreaseFactor { get; init; } = 0.5;

    /// <summary>Network pressure when the round's RTT exceeds base RTT × this factor.</summary>
    public double RttRiseFactor { get; init; } = 2.0;

    /// <summary>Network pressure when bytes acked fall below bytes sent × (1 − this).</summary>
    /// <summary>
    /// The RTT signal also needs the rise over the base RTT to exceed this absolute delay: on a sub-millisecond
    /// path a factor alone fires on scheduling jitter, not on queueing.
    /// </summary>
    public TimeSpan MinRttRise { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// …and to exceed this fraction of the round interval: a round's burst briefly queues window/rate at the
    /// bottleneck (e.g. tc tbf); only a queue that lasts a good part of the round means the link is overloaded.
    /// </summary>
    public double RttRiseIntervalFraction { get; init; } = 0.25;

    public double GoodputShortfall { get; init; } = 0.2;

    /// <summary>The goodput signal is ignored for rounds that sent fewer bytes than this.</summary>
    public long MinBytesForGoodputSignal { get; init; } = 64L << 10;

    /// <summary>Application slowdown when guest progress falls below baseline × (1 − this).</summary>
    public double SlowdownFraction { get; init; } = 0.10;

    /// <summary>Guest progress rate (work units/s) measured without sync; null disables the slowdown signal until <see cref="SyncWindow.SetProgressBaseline"/>.</summary>
    public double? BaselineProgressRate { get; init; }

    /// <summary>Rounds after a decrease during which further pressure holds the window instead of decreasing again.</summary>
    public int DecreaseHoldoffRounds { get; init; } = 1;

    /// <summary>The window grows only when the round sent at least this fraction of it (otherwise the sender, not the network, was the limit).</summary>
    public double AppLimitedFraction { get; init; } = 0.5;

    /// <summary>Optional hard rate cap (bytes/s): window ≤ cap × interval.</summary>
    public double? RateCapBytesPerSecond { get; init; }

    public TimeSpan InitialInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan MinInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    public TimeSpan MaxInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Interval multiplier when lengthening (divisor when shortening).</summary>
    public double IntervalStep { get; init; } = 2.0;

    /// <summary>Shorten only when the round's dirty bytes were at most this fraction of the window (hysteresis).</summary>
    public double ShortenBelowFraction { get; init; } = 0.5;

    /// <summary>
    /// Whether a drained window may shorten the interval below <see cref="InitialInterval"/> (down to
    /// <see cref="MinInterval"/>). Default false: before launch, sync latency buys nothing while longer rounds coalesce
    /// rewrites and keep the predictor on the timescale it learnt (it counts rounds), so shortening only undoes an
    /// earlier lengthening.
    /// </summary>
    public bool ShortenBelowInitialInterval { get; init; }

    /// <summary>When the interval changes, scale window and ssthresh with it so the byte rate is unchanged.</summary>
    public bool ScaleWindowWithInterval { get; init; } = true;

    public void Validate()
    {
        static ArgumentOutOfRangeException Bad(string name, object value, string what) => new(name, value, what);
        if (MinWindowBytes <= 0) throw Bad(nameof(MinWindowBytes), MinWindowBytes, "minimum window must be positive");
        if (MaxWindowBytes < MinWindowBytes) throw Bad(nameof(MaxWindowBytes), MaxWindowBytes, "maximum window must be at least the minimum window");
        if (InitialWindowBytes < MinWindowBytes || InitialWindowBytes > MaxWindowBytes)
            throw Bad(nameof(InitialWindowBytes), InitialWindowBytes, "initial window must lie between the minimum and maximum window");
        if (InitialSsthreshBytes < MinWindowBytes) throw Bad(nameof(InitialSsthreshBytes), InitialSsthreshBytes, "ssthresh must be at least the minimum window");
        if (AdditiveIncreaseBytes < 0) throw Bad(nameof(AdditiveIncreaseBytes), AdditiveIncreaseBytes, "additive increase must not be negative");
        if (!(DecreaseFactor > 0 && DecreaseFactor < 1)) throw Bad(nameof(DecreaseFactor), DecreaseFactor, "decrease factor must be in (0, 1)");
        if (!(RttRiseFactor > 1)) throw Bad(nameof(RttRiseFactor), RttRiseFactor, "RTT rise factor must be greater than 1");
        if (!(GoodputShortfall > 0 && GoodputShortfall < 1)) throw Bad(nameof(GoodputShortfall), GoodputShortfall, "goodput shortfall must be in (0, 1)");
        if (MinBytesForGoodputSignal < 0) throw Bad(nameof(MinBytesForGoodputSignal), MinBytesForGoodputSignal, "must not be negative");
        if (!(SlowdownFraction > 0 && SlowdownFraction < 1)) throw Bad(nameof(SlowdownFraction), SlowdownFraction, "slowdown fraction must be in (0, 1)");
        if (BaselineProgressRate is { } b && !(b > 0)) throw Bad(nameof(BaselineProgressRate), b, "baseline progress rate must be positive");
        if (DecreaseHoldoffRounds < 0) throw Bad(nameof(DecreaseHoldoffRounds), DecreaseHoldoffRounds, "must not be negative");
        if (!(AppLimitedFraction >= 0 && AppLimitedFraction <= 1)) throw Bad(nameof(AppLimitedFraction), AppLimitedFraction, "must be in [0, 1]");
        if (RateCapBytesPerSecond is { } cap && !(cap > 0)) throw Bad(nameof(RateCapBytesPerSecond), cap, "rate cap must be positive");
        if (MinInterval <= TimeSpan.Zero) throw Bad(nameof(MinInterval), MinInterval, "minimum interval must be positive");
        if (MaxInterval < MinInterval) throw Bad(nameof(MaxInterval), MaxInterval, "maximum interval must be at least the minimum interval");
        if (InitialInterval < MinInterval || InitialInterval > MaxInterval)
            throw Bad(nameof(InitialInterval), InitialInterval, "initial interval must lie between the minimum and maximum interval");
        if (!(IntervalStep > 1)) throw Bad(nameof(IntervalStep), IntervalStep, "interval step must be greater than 1");
        if (!(ShortenBelowFraction > 0 && ShortenBelowFraction <= 1)) throw Bad(nameof(ShortenBelowFraction), ShortenBelowFraction, "must be in (0, 1]");
    }
}
