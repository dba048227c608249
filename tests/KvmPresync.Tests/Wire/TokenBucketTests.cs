using KvmPresync.Wire;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Wire;

/// <summary>The token bucket, exact on a manual clock: the link is never faster than its rate beyond one burst.</summary>
public sealed class TokenBucketTests
{
    private const long Gigabit = 1_000_000_000;

    /// <summary>Moves <paramref name="total"/> bytes in chunks, "sleeping" exactly as long as the bucket asks; returns elapsed seconds.</summary>
    private static double Move(TokenBucket bucket, ManualClock clock, long total, int chunk)
    {
        long start = clock.Now;
        for (long moved = 0; moved < total; moved += chunk)
            clock.Advance(bucket.Reserve(Math.Min(chunk, total - moved)));
        return (clock.Now - start) / 1e9;
    }

    [Fact]
    public void Moving_256_MiB_at_1_gbit_takes_at_least_2_147_seconds()
    {
        var clock = new ManualClock();
        var bucket = new TokenBucket(Gigabit, TokenBucket.DefaultBurstBytes(Gigabit), clock);
        double seconds = Move(bucket, clock, 256L << 20, 64 * 1024);
        Assert.True(seconds >= 2.147483648, $"took {seconds:F9} s");
        Assert.True(seconds < 2.147483648 + 1e-6, $"took {seconds:F9} s: the bucket lost rate");
    }

    [Fact]
    public void New_bucket_starts_empty_so_the_first_bytes_already_wait()
    {
        var clock = new ManualClock();
        var bucket = new TokenBucket(8_000, 1_000, clock); // 1000 bytes/s
        Assert.Equal(TimeSpan.FromMilliseconds(500), bucket.Reserve(500));
    }

    [Fact]
    public void After_idle_at_most_one_burst_goes_at_once()
    {
        var clock = new ManualClock();
        var bucket = new TokenBucket(8_000, 1_000, clock); // 1000 bytes/s, burst 1000 bytes
        clock.Advance(TimeSpan.FromSeconds(60));            // idle a minute: the bucket fills only to the burst
        Assert.Equal(TimeSpan.Zero, bucket.Reserve(1_000));
        Assert.Equal(TimeSpan.FromMilliseconds(1), bucket.Reserve(1));
    }

    [Fact]
    public void Debt_accumulates_across_reservations_in_call_order()
    {
        var clock = new ManualClock();
        var bucket = new TokenBucket(8_000, 1_000, clock);
        Assert.Equal(TimeSpan.FromSeconds(1), bucket.Reserve(1_000));
        Assert.Equal(TimeSpan.FromSeconds(3), bucket.Reserve(2_000)); // queued behind the first
        clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(TimeSpan.Zero, bucket.Reserve(0));
    }

    [Fact]
    public void Waits_round_up_so_bytes_never_move_early()
    {
        var clock = new ManualClock();
        var bucket = new TokenBucket(3, 16, clock);             // 3 bit/s: 1 byte = 2.666… s
        TimeSpan wait = bucket.Reserve(1);
        Assert.True(wait.Ticks * 3 >= 8 * TimeSpan.TicksPerSecond, $"waited {wait}");
    }

    [Fact]
    public void Over_any_window_bytes_released_stay_within_burst_plus_rate_times_time()
    {
        var clock = new ManualClock();
        const long rate = 100_000_000, burst = 256 * 1024;
        var bucket = new TokenBucket(rate, burst, clock);
        var rng = new Random(7);
        var releases = new List<(long At, long Bytes)>();
        for (int i = 0; i < 5_000; i++)
        {
            if (rng.Next(10) == 0) clock.Advance(TimeSpan.FromMilliseconds(rng.Next(50))); // idle gaps
            long bytes = rng.Next(1, 128 * 1024);
            clock.Advance(bucket.Reserve(bytes));
            releases.Add((clock.Now, bytes));
        }
        for (int a = 0; a < releases.Count; a += 97)
        {
            long sum = 0;
            for (int b = a; b < releases.Count; b++)
            {
                sum += releases[b].Bytes;
                double window = (releases[b].At - releases[a].At) / 1e9;
                // Bytes of releases a..b happened within [At_a, At_b]; the first of them may use the burst.
                Assert.True(sum <= burst + releases[a].Bytes + rate / 8.0 * window + 1, $"window {a}..{b}: {sum} bytes in {window} s");
            }
        }
    }

    [Fact]
    public void A_waiter_that_oversleeps_past_the_burst_costs_the_link_no_rate_and_gains_it_none()
    {
        // every wait overslept by 6 ms, more than the 4 ms burst: a late timer (Task.Delay woke 2.5–7 ms late here)
        var clock = new ManualClock();
        var bucket = new TokenBucket(Gigabit, TokenBucket.DefaultBurstBytes(Gigabit), clock);
        long total = 64L << 20, oversleep = 6_000_000; // ns
        for (long moved = 0; moved < total; moved += 64 * 1024)
        {
            long due = bucket.ReserveUntil(64 * 1024, out long now);
            if (due <= now) continue;
            clock.Now = due + oversleep;
            bucket.Overslept(due, clock.Now);
        }
        double seconds = (clock.Now - 1_000_000_000) / 1e9, bound = total * 8.0 / Gigabit;
        Assert.True(seconds >= bound, $"took {seconds:F6} s, under the link's {bound:F6}");
        Assert.True(seconds <= bound + 2 * oversleep / 1e9, $"took {seconds:F6} s: the oversleeps cost the link its rate ({bound:F6} s)");
        // owed time goes to the bytes that follow back to back: after the link sat idle it saves up only the burst
        bucket.Overslept(clock.Now, clock.Now + 2 * oversleep);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TimeSpan.Zero, bucket.Reserve(TokenBucket.DefaultBurstBytes(Gigabit)));
        Assert.True(bucket.Reserve(64 * 1024) > TimeSpan.Zero);
        // without the owed time, each wait past the burst loses what the burst cannot hold
        var unowedClock = new ManualClock();
        var unowed = new TokenBucket(Gigabit, TokenBucket.DefaultBurstBytes(Gigabit), unowedClock);
        for (long moved = 0; moved < total; moved += 64 * 1024)
        {
            long due = unowed.ReserveUntil(64 * 1024, out long now);
            if (due > now) unowedClock.Now = due + oversleep;
        }
        Assert.True((unowedClock.Now - 1_000_000_000) / 1e9 > bound * 1.1);
    }

    [Fact]
    public async Task WaitAsync_in_real_time_paces_a_small_transfer()
    {
        var watch = System.Diagnostics.Stopwatch.StartNew(); // before the bucket: it starts empty at creation
        var bucket = new TokenBucket(80_000_000, 16 * 1024); // 10 MB/s
        for (int i = 0; i < 64; i++) await bucket.WaitAsync(32 * 1024, Ct); // 2 MiB → ≥ 0.2097 s
        double seconds = watch.Elapsed.TotalSeconds;
        Assert.True(seconds >= 2.0 * 1024 * 1024 / 10_000_000, $"took {seconds:F4} s");
        Assert.True(seconds < 2.0, $"took {seconds:F4} s");
    }

    [Fact]
    public void Rejects_nonpositive_rate_or_burst()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(0, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(10, 0));
    }
}
