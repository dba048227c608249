using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;

namespace KvmPresync.Tests.Presync;

public sealed class SyncWindowTests
{
    private const long MiB = 1 << 20;
    private static readonly TimeSpan Ms100 = TimeSpan.FromMilliseconds(100);

    /// <summary>Defaults with interval changes disabled unless a test asks (dirty 0, deferred > 0 keeps the interval).</summary>
    private static SyncWindowOptions Options(Func<SyncWindowOptions, SyncWindowOptions>? change = null)
    {
        var o = new SyncWindowOptions { InitialWindowBytes = MiB, MinWindowBytes = 64 * 1024, AdditiveIncreaseBytes = MiB, MinRttRise = TimeSpan.Zero, RttRiseIntervalFraction = 0 };
        return change is null ? o : change(o);
    }

    /// <summary>A round that used the whole window with no pressure: 1 ms RTT, everything acked, work left over.</summary>
    private static RoundFeedback Clean(long sent, double rttMs = 1) => new()
    {
        Elapsed = Ms100,
        Rtt = TimeSpan.FromMilliseconds(rttMs),
        BytesSent = sent,
        BytesAcked = sent,
        DirtyBytes = 0,
        DeferredBytes = 1,
    };

    [Fact]
    public void Slow_start_doubles_the_window_each_full_round()
    {
        var w = new SyncWindow(Options());
        Assert.Equal(MiB, w.Window);
        Assert.Equal(WindowPhase.SlowStart, w.Phase);
        var d = w.OnRound(Clean(MiB));
        Assert.Equal(WindowReason.SlowStartGrowth, d.Reason);
        Assert.Equal(2 * MiB, w.Window);
        w.OnRound(Clean(2 * MiB));
        Assert.Equal(4 * MiB, w.Window);
        Assert.Equal(long.MaxValue, w.Ssthresh);
    }

    [Fact]
    public void Reaching_ssthresh_switches_to_additive_increase()
    {
        var w = new SyncWindow(Options(o => o with { InitialSsthreshBytes = 3 * MiB }));
        w.OnRound(Clean(MiB));
        Assert.Equal(2 * MiB, w.Window);
        var d = w.OnRound(Clean(2 * MiB));
        Assert.Equal(WindowReason.ReachedSsthresh, d.Reason);
        Assert.Equal(3 * MiB, w.Window);
        Assert.Equal(WindowPhase.CongestionAvoidance, w.Phase);
        d = w.OnRound(Clean(3 * MiB));
        Assert.Equal(WindowReason.AdditiveIncrease, d.Reason);
        Assert.Equal(4 * MiB, w.Window);
        w.OnRound(Clean(4 * MiB));
        Assert.Equal(5 * MiB, w.Window);
    }

    [Fact]
    public void Rtt_rise_shorter_than_a_quarter_round_is_a_burst_not_overload()
    {
        var w = new SyncWindow(Options(o => o with { RttRiseIntervalFraction = 0.25 })); // 100 ms rounds: floor 25 ms
        w.OnRound(Clean(MiB, rttMs: 1));
        Assert.Equal(PressureSignals.None, w.OnRound(Clean(2 * MiB, rttMs: 20)).Signals); // 19 ms of burst queue
        Assert.Equal(WindowReason.DecreaseOnRtt, w.OnRound(Clean(4 * MiB, rttMs: 30)).Reason); // 29 ms: overloaded
    }

    [Fact]
    public void Rtt_rise_below_the_absolute_floor_is_jitter_not_pressure()
    {
        var w = new SyncWindow(Options(o => o with { MinRttRise = TimeSpan.FromMilliseconds(5) }));
        w.OnRound(Clean(MiB, rttMs: 0.5));          // base RTT 0.5 ms, window 2 MiB
        var d = w.OnRound(Clean(2 * MiB, rttMs: 4)); // 8× base but only 3.5 ms above it: growth continues
        Assert.Equal(PressureSignals.None, d.Signals);
        Assert.Equal(4 * MiB, w.Window);
        d = w.OnRound(Clean(4 * MiB, rttMs: 6));     // 5.5 ms above base: queueing
        Assert.Equal(WindowReason.DecreaseOnRtt, d.Reason);
        Assert.Equal(2 * MiB, w.Window);
    }

    [Fact]
    public void Rtt_above_base_times_factor_halves_the_window()
    {
        var w = new SyncWindow(Options());
        w.OnRound(Clean(MiB, rttMs: 1));            // base RTT 1 ms, window 2 MiB
        w.OnRound(Clean(2 * MiB, rttMs: 2));        // exactly 2× base: not above the factor → 4 MiB
        Assert.Equal(4 * MiB, w.Window);
        var d = w.OnRound(Clean(4 * MiB, rttMs: 2.5));
        Assert.Equal(WindowReason.DecreaseOnRtt, d.Reason);
        Assert.Equal(PressureSignals.Rtt, d.Signals);
        Assert.Equal(TimeSpan.FromMilliseconds(1), d.BaseRtt);
        Assert.Equal(2 * MiB, w.Window);
        Assert.Equal(2 * MiB, w.Ssthresh);
        Assert.Equal(WindowPhase.CongestionAvoidance, w.Phase);
    }

    [Fact]
    public void Goodput_short_of_what_was_sent_halves_the_window()
    {
        var w = new SyncWindow(Options());
        w.OnRound(Clean(MiB));                        // 2 MiB
        var fine = Clean(2 * MiB) with { BytesAcked = 1_677_722 }; // just over 80% of 2 MiB: no signal
        Assert.Equal(WindowReason.SlowStartGrowth, w.OnRound(fine).Reason);
        Assert.Equal(4 * MiB, w.Window);
        var d = w.OnRound(Clean(4 * MiB) with { BytesAcked = 3 * MiB });   // 75% acked
        Assert.Equal(WindowReason.DecreaseOnGoodput, d.Reason);
        Assert.Equal(PressureSignals.Goodput, d.Signals);
        Assert.Equal(2 * MiB, w.Window);
    }

    [Fact]
    public void Goodput_signal_ignores_tiny_rounds()
    {
        var w = new SyncWindow(Options(o => o with { InitialWindowBytes = 64 * 1024, MinBytesForGoodputSignal = 64 * 1024 }));
        var d = w.OnRound(Clean(60 * 1024) with { BytesAcked = 0 });
        Assert.Equal(PressureSignals.None, d.Signals);
        Assert.Equal(WindowReason.SlowStartGrowth, d.Reason);
    }

    [Fact]
    public void Guest_slowdown_below_baseline_halves_the_window()
    {
        var w = new SyncWindow(Options(o => o with { BaselineProgressRate = 100, SlowdownFraction = 0.10 }));
        w.OnRound(Clean(MiB) with { ProgressRate = 95 });   // 5% slower: tolerated → 2 MiB
        Assert.Equal(2 * MiB, w.Window);
        w.OnRound(Clean(2 * MiB) with { ProgressRate = 90 }); // exactly 10%: not below → 4 MiB
        Assert.Equal(4 * MiB, w.Window);
        var d = w.OnRound(Clean(4 * MiB) with { ProgressRate = 85 });
        Assert.Equal(WindowReason.DecreaseOnSlowdown, d.Reason);
        Assert.Equal(2 * MiB, w.Window);
    }

    [Fact]
    public void Slowdown_signal_waits_for_a_baseline()
    {
        var w = new SyncWindow(Options());
        Assert.Equal(WindowReason.SlowStartGrowth, w.OnRound(Clean(MiB) with { ProgressRate = 1 }).Reason);
        w.SetProgressBaseline(100);
        Assert.Equal(WindowReason.DecreaseOnSlowdown, w.OnRound(Clean(2 * MiB) with { ProgressRate = 1 }).Reason);
        Assert.Equal(MiB, w.Window);
    }

    [Fact]
    public void Slowdown_takes_precedence_when_several_signals_fire()
    {
        var w = new SyncWindow(Options(o => o with { BaselineProgressRate = 100 }));
        w.OnRound(Clean(MiB));
        var d = w.OnRound(Clean(2 * MiB, rttMs: 10) with { BytesAcked = 0, ProgressRate = 10 });
        Assert.Equal(PressureSignals.Rtt | PressureSignals.Goodput | PressureSignals.Slowdown, d.Signals);
        Assert.Equal(WindowReason.DecreaseOnSlowdown, d.Reason);
    }

    [Fact]
    public void Pressure_right_after_a_decrease_holds_then_decreases_again()
    {
        var w = new SyncWindow(Options(o => o with { InitialWindowBytes = 8 * MiB }));
        w.OnRound(Clean(8 * MiB, rttMs: 1));
        Assert.Equal(16 * MiB, w.Window);
        Assert.Equal(WindowReason.DecreaseOnRtt, w.OnRound(Clean(16 * MiB, rttMs: 5)).Reason);
        Assert.Equal(8 * MiB, w.Window);
        Assert.Equal(WindowReason.HoldInRecovery, w.OnRound(Clean(8 * MiB, rttMs: 5)).Reason);
        Assert.Equal(8 * MiB, w.Window);
        Assert.Equal(WindowReason.DecreaseOnRtt, w.OnRound(Clean(8 * MiB, rttMs: 5)).Reason);
        Assert.Equal(4 * MiB, w.Window);
        Assert.Equal(4 * MiB, w.Ssthresh);
        Assert.Equal(WindowReason.AdditiveIncrease, w.OnRound(Clean(4 * MiB, rttMs: 1)).Reason);
        Assert.Equal(5 * MiB, w.Window);
    }

    [Fact]
    public void Window_never_drops_below_its_minimum()
    {
        var w = new SyncWindow(Options(o => o with { InitialWindowBytes = 100 * 1024, MinWindowBytes = 64 * 1024, DecreaseHoldoffRounds = 0 }));
        w.OnRound(Clean(100 * 1024, rttMs: 1));
        w.OnRound(Clean(200 * 1024, rttMs: 9));
        Assert.Equal(100 * 1024, w.Window);
        w.OnRound(Clean(100 * 1024, rttMs: 9));
        Assert.Equal(64 * 1024, w.Window);
        Assert.Equal(WindowReason.DecreaseOnRtt, w.OnRound(Clean(64 * 1024, rttMs: 9)).Reason);
        Assert.Equal(64 * 1024, w.Window);
    }

    [Fact]
    public void A_round_that_used_under_half_the_window_does_not_grow_it()
    {
        var w = new SyncWindow(Options());
        var d = w.OnRound(Clean(MiB / 2 - 1));
        Assert.Equal(WindowReason.HoldAppLimited, d.Reason);
        Assert.Equal(MiB, w.Window);
        Assert.Equal(WindowReason.SlowStartGrowth, w.OnRound(Clean(MiB / 2)).Reason);
        Assert.Equal(2 * MiB, w.Window);
    }

    [Fact]
    public void Growth_stops_at_the_maximum_window()
    {
        var w = new SyncWindow(Options(o => o with { MaxWindowBytes = 3 * MiB }));
        w.OnRound(Clean(MiB));
        w.OnRound(Clean(2 * MiB));
        Assert.Equal(3 * MiB, w.Window);
        Assert.Equal(WindowReason.HoldAtMaximum, w.OnRound(Clean(3 * MiB)).Reason);
        Assert.Equal(3 * MiB, w.Window);
    }

    [Fact]
    public void Rate_cap_bounds_the_window_to_cap_times_interval()
    {
        // 30 MB/s × 100 ms = 3,000,000 bytes.
        var w = new SyncWindow(Options(o => o with { RateCapBytesPerSecond = 30e6 }));
        w.OnRound(Clean(MiB));
        Assert.Equal(2 * MiB, w.Window);
        var d = w.OnRound(Clean(2 * MiB));
        Assert.True(d.RateCapped);
        Assert.Equal(3_000_000, w.Window);
        Assert.Equal(3_000_000, d.WindowAfter);
        Assert.True(w.OnRound(Clean(3_000_000)).RateCapped);
        Assert.Equal(3_000_000, w.Window);
    }

    [Fact]
    public void Rate_cap_applies_to_the_initial_window()
    {
        var w = new SyncWindow(Options(o => o with { RateCapBytesPerSecond = 1e6 }));
        Assert.Equal(100_000, w.Window);
    }

    [Fact]
    public void Interval_lengthens_when_dirty_bytes_outrun_the_window_and_the_window_keeps_its_rate()
    {
        var w = new SyncWindow(Options());
        var d = w.OnRound(Clean(MiB) with { DirtyBytes = MiB + 1 });
        Assert.Equal(IntervalReason.LengthenedDirtyOutrunsWindow, d.IntervalReason);
        Assert.Equal(TimeSpan.FromMilliseconds(200), w.Interval);
        Assert.Equal(4 * MiB, w.Window); // doubled by slow start, then ×2 for the doubled interval
        w.OnRound(Clean(4 * MiB) with { DirtyBytes = 5 * MiB });
        w.OnRound(Clean(16 * MiB) with { DirtyBytes = 17 * MiB });
        w.OnRound(Clean(64 * MiB) with { DirtyBytes = 65 * MiB });
        Assert.Equal(TimeSpan.FromMilliseconds(1600), w.Interval);
        var capped = w.OnRound(Clean(256 * MiB) with { DirtyBytes = 257 * MiB });
        Assert.Equal(TimeSpan.FromSeconds(2), w.Interval); // clamped to the maximum
        Assert.Equal(IntervalReason.LengthenedDirtyOutrunsWindow, capped.IntervalReason);
        Assert.Equal(IntervalReason.Unchanged, w.OnRound(Clean(w.Window) with { DirtyBytes = long.MaxValue / 4 }).IntervalReason);
        Assert.Equal(TimeSpan.FromSeconds(2), w.Interval);
    }

    [Fact]
    public void Interval_shortens_when_the_window_drained_everything_with_room_to_spare()
    {
        var w = new SyncWindow(Options(o => o with { ShortenBelowInitialInterval = true }));
        // Dirty exactly half the window, nothing deferred → shorten; window halves with the interval.
        var d = w.OnRound(Clean(MiB) with { DirtyBytes = MiB / 2, DeferredBytes = 0 });
        Assert.Equal(IntervalReason.ShortenedWindowDrained, d.IntervalReason);
        Assert.Equal(TimeSpan.FromMilliseconds(50), w.Interval);
        Assert.Equal(MiB, w.Window); // 2 MiB by slow start, ×½ for the halved interval
        // Already at the 50 ms minimum.
        Assert.Equal(IntervalReason.Unchanged, w.OnRound(Clean(MiB) with { DirtyBytes = 0, DeferredBytes = 0 }).IntervalReason);
        // Something deferred: no shortening even with few dirty bytes.
        var w2 = new SyncWindow(Options(o => o with { ShortenBelowInitialInterval = true }));
        Assert.Equal(IntervalReason.Unchanged, w2.OnRound(Clean(MiB) with { DirtyBytes = 0, DeferredBytes = 4096 }).IntervalReason);
        // Dirty above half the window: hysteresis keeps the interval.
        var w3 = new SyncWindow(Options(o => o with { ShortenBelowInitialInterval = true }));
        Assert.Equal(IntervalReason.Unchanged, w3.OnRound(Clean(MiB) with { DirtyBytes = MiB / 2 + 1, DeferredBytes = 0 }).IntervalReason);
    }

    [Fact]
    public void By_default_a_drained_window_shortens_the_interval_back_to_the_initial_one_but_not_below()
    {
        var w = new SyncWindow(Options());
        // Drained at the initial 100 ms: the predictor's timescale (rounds) is kept, nothing to undo.
        Assert.Equal(IntervalReason.Unchanged, w.OnRound(Clean(MiB) with { DirtyBytes = 0, DeferredBytes = 0 }).IntervalReason);
        Assert.Equal(Ms100, w.Interval);
        // Lengthened by a dirty burst, then drained: back to 100 ms, and no further.
        w.OnRound(Clean(w.Window) with { DirtyBytes = long.MaxValue / 4 });
        Assert.Equal(TimeSpan.FromMilliseconds(200), w.Interval);
        Assert.Equal(IntervalReason.ShortenedWindowDrained, w.OnRound(Clean(w.Window) with { DirtyBytes = 0, DeferredBytes = 0 }).IntervalReason);
        Assert.Equal(Ms100, w.Interval);
        Assert.Equal(IntervalReason.Unchanged, w.OnRound(Clean(w.Window) with { DirtyBytes = 0, DeferredBytes = 0 }).IntervalReason);
        Assert.Equal(Ms100, w.Interval);
    }

    [Fact]
    public void Decision_records_inputs_and_before_after_values()
    {
        var w = new SyncWindow(Options());
        var fb = Clean(MiB, rttMs: 3) with { DirtyBytes = 12345 };
        var d = w.OnRound(fb);
        Assert.Equal(0, d.Round);
        Assert.Equal(fb, d.Feedback);
        Assert.Equal(MiB, d.WindowBefore);
        Assert.Equal(2 * MiB, d.WindowAfter);
        Assert.Equal(Ms100, d.IntervalBefore);
        Assert.Equal(Ms100, d.IntervalAfter);
        Assert.Equal(1, w.OnRound(fb).Round);
    }

    [Fact]
    public void Invalid_options_are_rejected_with_the_field_named()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new SyncWindow(new SyncWindowOptions { DecreaseFactor = 1.0 }));
        Assert.Equal("DecreaseFactor", ex.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => new SyncWindow(new SyncWindowOptions { InitialWindowBytes = 1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SyncWindow(new SyncWindowOptions { MinInterval = TimeSpan.FromSeconds(3) }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SyncWindow().OnRound(new RoundFeedback { BytesSent = -1 }));
    }
}
