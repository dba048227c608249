using KvmPresync.Core;
namespace KvmPresync.Engine;

/// <summary>
/// The slow-start synchronization adaptive policy: a TCP-like controller of how many bytes each sync round may
/// send, and of how long a round is.
/// </summary>
/// <remarks>
/// <code>
///            pressure (RTT / goodput / slowdown), not in hold-off:
///            W ← max(min, W·β), ssthresh ← W
///   ┌───────────┐ ─────────────────────────────────────────► ┌──────────────────────┐
///   │ SlowStart │                                           │ CongestionAvoidance  │ ◄─┐ pressure: W ← max(min, W·β)
///   │  W ← 2W   │ ── 2W ≥ ssthresh: W ← ssthresh ─────────► │  W ← W + AI          │ ──┘ no pressure: W ← W + AI
///   └───────────┘                                           └──────────────────────┘
///   In either phase: pressure within the hold-off after a decrease → hold; sent &lt; W·appLimited → hold.
///   Then: interval ×step when dirty bytes &gt; W (coalesce), ÷step (not below the initial interval unless allowed)
///   when nothing was deferred and dirty ≤ W·shorten;
///   W and ssthresh scale with the interval (same rate); finally W ≤ rateCap × interval.
/// </code>
/// A pure object: feed it each round's <see cref="RoundFeedback"/>, read <see cref="Window"/> and
/// <see cref="Interval"/> for the next round; every call returns the decision with its inputs and reason.
/// </remarks>
public sealed class SyncWindow
{
    private readonly SyncWindowOptions _options;
    private double? _baselineProgress;
    private int _roundsSinceDecrease = int.MaxValue;

    public SyncWindow(SyncWindowOptions? options = null)
    {
        _options = options ?? new SyncWindowOptions();
        _options.Validate();
        _baselineProgress = _options.BaselineProgressRate;
        Window = _options.InitialWindowBytes;
        Ssthresh = _options.InitialSsthreshBytes;
        Interval = _options.InitialInterval;
        Phase = WindowPhase.SlowStart;
        Window = ApplyRateCap(Window, Interval, out _);
    }

    public SyncWindowOptions Options => _options;

    /// <summary>Bytes the next round may send.</summary>
    public long Window { get; private set; }

    /// <summary>Slow-start threshold (long.MaxValue until the first decrease unless configured).</summary>
    public long Ssthresh { get; private set; }

    /// <summary>Length of the next round.</summary>
    public TimeSpan Interval { get; private set; }

    public WindowPhase Phase { get; private set; }

    /// <summary>Minimum RTT observed (null until the first RTT sample).</summary>
    public TimeSpan? BaseRtt { get; private set; }

    /// <summary>Rounds fed so far.</summary>
    public long Rounds { get; private set; }

    /// <summary>Sets the guest's unsynced progress rate (work units/s), enabling the slowdown signal.</summary>
    public void SetProgressBaseline(double progressRate)
    {
        if (!(progressRate > 0) || double.IsInfinity(progressRate))
            throw new ArgumentOutOfRangeException(nameof(progressRate), progressRate, "baseline progress rate must be a positive, finite number");
        _baselineProgress = progressRate;
    }

    /// <summary>Consumes one round's measurements and sets <see cref="Window"/> and <see cref="Interval"/> for the next round.</summary>
    public WindowDecision OnRound(in RoundFeedback feedback)
    {
        if (feedback.BytesSent < 0 || feedback.BytesAcked < 0 || feedback.DirtyBytes < 0 || feedback.DeferredBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(feedback), feedback, "round feedback byte counts must not be negative");

        long windowBefore = Window;
        TimeSpan intervalBefore = Interval;
        PressureSignals signals = Signals(feedback);

        long w = Window;
        WindowReason reason;
        if (signals != PressureSignals.None && _roundsSinceDecrease < _options.DecreaseHoldoffRounds)
        {
            reason = WindowReason.HoldInRecovery;
        }
        else if (signals != PressureSignals.None)
        {
            w = Math.Max(_options.MinWindowBytes, (long)(w * _options.DecreaseFactor));
            Ssthresh = w;
            Phase = WindowPhase.CongestionAvoidance;
            reason = (signals & PressureSignals.Slowdown) != 0 ? WindowReason.DecreaseOnSlowdown
                : (signals & PressureSignals.Rtt) != 0 ? WindowReason.DecreaseOnRtt
                : WindowReason.DecreaseOnGoodput;
        }
        else if (feedback.BytesSent < w * _options.AppLimitedFraction)
        {
            reason = WindowReason.HoldAppLimited;
        }
        else if (w >= _options.MaxWindowBytes)
        {
            reason = WindowReason.HoldAtMaximum;
        }
        else if (Phase == WindowPhase.SlowStart)
        {
            long doubled = w > long.MaxValue / 2 ? long.MaxValue : w * 2;
            if (doubled >= Ssthresh)
            {
                w = Ssthresh;
                Phase = WindowPhase.CongestionAvoidance;
                reason = WindowReason.ReachedSsthresh;
            }
            else
            {
                w = doubled;
                reason = WindowReason.SlowStartGrowth;
            }
        }
        else
        {
            w = w > long.MaxValue - _options.AdditiveIncreaseBytes ? long.MaxValue : w + _options.AdditiveIncreaseBytes;
            reason = WindowReason.AdditiveIncrease;
        }
        w = Math.Clamp(w, _options.MinWindowBytes, _options.MaxWindowBytes);

        bool decreased = reason is WindowReason.DecreaseOnRtt or WindowReason.DecreaseOnGoodput or WindowReason.DecreaseOnSlowdown;
        _roundsSinceDecrease = decreased ? 0 : _roundsSinceDecrease == int.MaxValue ? int.MaxValue : _roundsSinceDecrease + 1;

        IntervalReason intervalReason = NextInterval(feedback, windowBefore, out TimeSpan interval);
        if (interval != intervalBefore && _options.ScaleWindowWithInterval)
        {
            double scale = (double)interval.Ticks / intervalBefore.Ticks;
            w = Math.Clamp(Scale(w, scale), _options.MinWindowBytes, _options.MaxWindowBytes);
            if (Ssthresh != long.MaxValue) Ssthresh = Math.Max(_options.MinWindowBytes, Scale(Ssthresh, scale));
        }
        Interval = interval;
        Window = ApplyRateCap(w, interval, out bool capped);
        Rounds++;

        return new WindowDecision
        {
            Round = Rounds - 1,
            Feedback = feedback,
            BaseRtt = BaseRtt,
            Signals = signals,
            WindowBefore = windowBefore,
            WindowAfter = Window,
            SsthreshAfter = Ssthresh,
            PhaseAfter = Phase,
            Reason = reason,
            RateCapped = capped,
            IntervalBefore = intervalBefore,
            IntervalAfter = Interval,
            IntervalReason = intervalReason,
        };
    }

    private PressureSignals Signals(in RoundFeedback feedback)
    {
        PressureSignals signals = PressureSignals.None;
        if (feedback.Rtt is { } rtt && rtt > TimeSpan.Zero)
        {
            BaseRtt = BaseRtt is { } b && b <= rtt ? b : rtt;
            TimeSpan floor = _options.MinRttRise > Interval * _options.RttRiseIntervalFraction ? _options.MinRttRise : Interval * _options.RttRiseIntervalFraction;
            if (rtt.Ticks > BaseRtt.Value.Ticks * _options.RttRiseFactor && rtt - BaseRtt.Value > floor) signals |= PressureSignals.Rtt;
        }
        if (feedback.BytesSent >= _options.MinBytesForGoodputSignal && feedback.BytesSent > 0
            && feedback.BytesAcked < feedback.BytesSent * (1 - _options.GoodputShortfall))
            signals |= PressureSignals.Goodput;
        if (_baselineProgress is { } baseline && feedback.ProgressRate is { } progress
            && progress < baseline * (1 - _options.SlowdownFraction))
            signals |= PressureSignals.Slowdown;
        return signals;
    }

    private IntervalReason NextInterval(in RoundFeedback feedback, long windowUsed, out TimeSpan interval)
    {
        interval = Interval;
        if (feedback.DirtyBytes > windowUsed)
        {
            TimeSpan longer = Min(_options.MaxInterval, TimeSpan.FromTicks((long)(Interval.Ticks * _options.IntervalStep)));
            if (longer == Interval) return IntervalReason.Unchanged;
            interval = longer;
            return IntervalReason.LengthenedDirtyOutrunsWindow;
        }
        if (feedback.DeferredBytes == 0 && feedback.DirtyBytes <= windowUsed * _options.ShortenBelowFraction)
        {
            TimeSpan floor = _options.ShortenBelowInitialInterval ? _options.MinInterval : Max(_options.MinInterval, _options.InitialInterval);
            TimeSpan shorter = Max(floor, TimeSpan.FromTicks((long)(Interval.Ticks / _options.IntervalStep)));
            if (shorter > Interval) return IntervalReason.Unchanged;
            if (shorter == Interval) return IntervalReason.Unchanged;
            interval = shorter;
            return IntervalReason.ShortenedWindowDrained;
        }
        return IntervalReason.Unchanged;
    }

    private long ApplyRateCap(long window, TimeSpan interval, out bool capped)
    {
        capped = false;
        if (_options.RateCapBytesPerSecond is not { } cap) return window;
        long limit = Math.Max(1, (long)Math.Floor(cap * interval.TotalSeconds));
        if (window <= limit) return window;
        capped = true;
        return limit;
    }

    private static long Scale(long value, double factor)
    {
        double scaled = Math.Round(value * factor);
        return scaled >= long.MaxValue ? long.MaxValue : (long)scaled;
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a <= b ? a : b;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a >= b ? a : b;
}
