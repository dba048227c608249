namespace KvmPresync.Wire;

/// <summary>
/// A token bucket in exact integer arithmetic (bits × clock ticks, no rounding drift). Tokens accrue at
/// <see cref="BitsPerSecond"/> up to <see cref="BurstBytes"/>; a reservation takes its bytes at once and may
/// drive the bucket into debt, and the caller then waits until the debt is repaid before moving the bytes.
/// So over any interval of length t the bytes released are at most <c>burst + rate·t</c>, plus what a waiter that
/// overslept its due time is owed (<see cref="Overslept"/>: the link would have carried its bytes then); and since a new
/// bucket starts EMPTY, N bytes from the start take at least N·8/rate seconds (256 MiB at 1 Gbit/s ≥ 2.147 s).
/// Thread-safe; reservations are served in call order.
/// </summary>
public sealed class TokenBucket
{
    private readonly object _gate = new();
    private readonly TimeProvider _time;
    private readonly long _frequency;
    private readonly Int128 _capacity; // burst, in bits × ticks-per-second
    private Int128 _tokens;            // in bits × ticks-per-second; negative = debt
    private long _last;
    private Int128 _owed;              // what the last late waiter overslept (Overslept), same units
    private long _owedAt;              // when it woke

    public TokenBucket(long bitsPerSecond, long burstBytes, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bitsPerSecond);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(burstBytes);
        BitsPerSecond = bitsPerSecond;
        BurstBytes = burstBytes;
        _time = timeProvider ?? TimeProvider.System;
        _frequency = _time.TimestampFrequency;
        _capacity = (Int128)burstBytes * 8 * _frequency;
        _tokens = 0;
        _last = _time.GetTimestamp();
    }

    public long BitsPerSecond { get; }

    public long BurstBytes { get; }

    /// <summary>A burst of about 4 ms of traffic, between 16 KiB and 4 MiB: enough to absorb timer lateness without losing rate.</summary>
    public static long DefaultBurstBytes(long bitsPerSecond) => Math.Clamp(bitsPerSecond / 8 / 250, 16 * 1024, 4 * 1024 * 1024);

    /// <summary>Takes <paramref name="bytes"/> now and returns how long the caller must wait before moving them.</summary>
    public TimeSpan Reserve(long bytes)
    {
        long due = ReserveUntil(bytes, out long now);
        return TicksToTimeSpan(due - now);
    }

    /// <summary>Reserves <paramref name="bytes"/> and waits (asynchronously) until they may move.</summary>
    public async ValueTask WaitAsync(long bytes, CancellationToken cancellationToken = default)
    {
        long due = ReserveUntil(bytes, out long now);
        while (now < due)
        {
            await Task.Delay(SleepFor(due - now), _time, cancellationToken).ConfigureAwait(false);
            now = _time.GetTimestamp();
        }
        Overslept(due, now);
    }

    /// <summary>Reserves <paramref name="bytes"/> and blocks the thread until they may move (real clocks only).</summary>
    public void Wait(long bytes, CancellationToken cancellationToken = default)
    {
        long due = ReserveUntil(bytes, out long now);
        while (now < due)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Thread.Sleep(SleepFor(due - now));
            now = _time.GetTimestamp();
        }
        Overslept(due, now);
    }

    /// <summary>
    /// A waiter whose bytes were due at <paramref name="due"/> woke at <paramref name="woke"/>: a link would have carried them
    /// then, so the time it overslept is owed to the next bytes — beyond the burst, which caps only what an idle link saves
    /// up. Without this a timer that wakes later than the burst lasts costs the link its rate: on this 2-core host
    /// <c>Task.Delay(1 ms)</c> woke 2.5–7 ms late, and a 1 Gbit/s link (4 ms burst) moved back-to-back 0.5 MB frames at
    /// 97–120 MB/s; with it, at 120–130 (10.2 MB in 78–85 ms, 77.6 the bound; 29 Nov 2026). The owed time passed on the
    /// clock, so from the start the bytes still never exceed the rate times the time.
    /// </summary>
    internal void Overslept(long due, long woke)
    {
        if (woke <= due) return;
        lock (_gate)
        {
            _owed = (Int128)(woke - due) * BitsPerSecond;
            _owedAt = woke;
        }
    }

    /// <summary>Returns the timestamp at which the reserved bytes may move (≤ now when they may go at once).</summary>
    internal long ReserveUntil(long bytes, out long now)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (_gate)
        {
            now = _time.GetTimestamp();
            long elapsed = now - _last;
            if (elapsed > 0)
            {
                // an idle link saves up at most the burst; time a waiter overslept (Overslept) is owed above it to the
                // bytes that follow back to back (within a burst's time of its waking), not to bytes after the link sat idle
                bool backToBack = (Int128)(now - _owedAt) * BitsPerSecond <= _capacity;
                Int128 cap = backToBack && _owed > _capacity ? _owed : _capacity;
                _tokens += (Int128)elapsed * BitsPerSecond;
                if (_tokens > cap) _tokens = cap;
                _last = now;
            }
            _tokens -= (Int128)bytes * 8 * _frequency;
            if (_tokens >= 0) return now;
            // Ticks until accrual repays the debt, rounded up so the bytes never move early.
            Int128 debt = -_tokens;
            Int128 ticks = (debt + BitsPerSecond - 1) / BitsPerSecond;
            return _last + (long)ticks;
        }
    }

    private TimeSpan TicksToTimeSpan(long ticks) =>
        ticks <= 0 ? TimeSpan.Zero : TimeSpan.FromTicks((long)(((Int128)ticks * TimeSpan.TicksPerSecond + _frequency - 1) / _frequency));

    // Timers have ~1 ms granularity; sleep at least that long (lateness is absorbed by the burst).
    private TimeSpan SleepFor(long ticks)
    {
        TimeSpan t = TicksToTimeSpan(ticks);
        return t < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : t;
    }
}
