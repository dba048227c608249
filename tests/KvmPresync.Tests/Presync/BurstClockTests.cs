using KvmPresync.Engine;

namespace KvmPresync.Tests.Presync;

/// <summary>
/// The burst clock (<see cref="BurstClock"/>) fed looks at a dirty count as the sender's sampler takes them: one every
/// ~1.1 ms, the count of pages dirtied since the last harvest, dropping at each harvest.
/// </summary>
public sealed class BurstClockTests
{
    /// <summary>A guest's writes: bursts (start ms, length ms, pages), each spread evenly over its length.</summary>
    private sealed record Guest(IReadOnlyList<(double Start, double Length, long Pages)> Bursts, double BackgroundPagesPerMs = 0)
    {
        /// <summary>Pages written in (a, b].</summary>
        public double Written(double a, double b)
        {
            double n = BackgroundPagesPerMs * (b - a);
            foreach (var (s, len, pages) in Bursts)
            {
                double overlap = Math.Min(b, s + len) - Math.Max(a, s);
                if (overlap > 0) n += pages * overlap / len;
            }
            return n;
        }
    }

    /// <summary>
    /// Looks every <paramref name="lookMs"/> from 0 to <paramref name="untilMs"/>, harvesting every <paramref name="harvestMs"/>.
    /// <paramref name="visible"/>: whether a burst's pages show after the first burst since a harvest (false: a frame buffer
    /// rewritten in place adds nothing to the count until the next harvest).
    /// </summary>
    private static BurstClock Feed(Guest guest, double untilMs, double harvestMs = 100, double lookMs = 1.1, bool visible = true)
    {
        var clock = new BurstClock();
        double count = 0, lastHarvest = 0, previous = 0;
        bool seenSinceHarvest = false;
        for (double t = lookMs; t <= untilMs; t += lookMs)
        {
            if (t - lastHarvest >= harvestMs)
            {
                count = 0;
                lastHarvest = t;
                seenSinceHarvest = false;
            }
            double written = guest.Written(t - lookMs, t);
            if (visible || !seenSinceHarvest) count += written;
            if (written > 32) seenSinceHarvest = true;
            clock.Observe(TimeSpan.FromMilliseconds(previous), TimeSpan.FromMilliseconds(t), (long)count);
            previous = t;
        }
        return clock;
    }

    private static Guest Movie(double periodMs, int frames, double jitterMs, int seed, double firstMs = 3)
    {
        var random = new Random(seed);
        var bursts = new List<(double, double, long)>();
        for (int i = 0; i < frames; i++)
        {
            long pages = 700 + random.Next(2000);
            bursts.Add((firstMs + i * periodMs + (random.NextDouble() * 2 - 1) * jitterMs, pages / 180.0, pages)); // ~180 pages/ms, as measured
        }
        return new Guest(bursts, BackgroundPagesPerMs: 0.5);
    }

    [Fact]
    public void PeriodicBurstsGiveTheirPeriodAndPhase()
    {
        Guest movie = Movie(40, 50, jitterMs: 1.5, seed: 1);
        BurstClock clock = Feed(movie, untilMs: 2000);
        BurstForecast f = Assert.IsType<BurstForecast>(clock.Forecast());
        Assert.InRange(f.Period.TotalMilliseconds, 39.5, 40.5);
        // the next burst after 2000 ms is the one planned at 3 + 50 × 40 = 2003 ms
        Assert.InRange(f.NextStart(TimeSpan.FromMilliseconds(2000)).TotalMilliseconds, 2000, 2006);
        Assert.InRange(f.Length.TotalMilliseconds, 3, 16);
        Assert.InRange(f.Pages, 700, 2700);
    }

    [Fact]
    public void BurstsSeenOnlyOncePerHarvestStillGiveThePeriod()
    {
        // a frame buffer rewritten in place: only the first burst after each 100 ms harvest adds to the count
        Guest movie = Movie(40, 100, jitterMs: 1, seed: 2);
        BurstClock clock = Feed(movie, untilMs: 4000, visible: false);
        Assert.True(clock.Bursts.Count >= 6);
        BurstForecast f = Assert.IsType<BurstForecast>(clock.Forecast());
        Assert.InRange(f.Period.TotalMilliseconds, 39.5, 40.5);
    }

    [Fact]
    public void AMeasuredMovieRunGivesAForecast()
    {
        // the bursts one movie run's sampler saw (start ms, length ms, pages), 28 Nov 2026
        (double, double, long)[] seen =
        [
            (14189.8, 4.4, 715), (14229.3, 13.6, 2703), (14269.6, 11.3, 2419), (14310.6, 11.3, 1867), (14350.2, 3.3, 782),
            (14389.6, 5.6, 716), (14429.5, 14.7, 2691), (14469.9, 15.2, 2548), (14510.6, 8.3, 1637), (14548.4, 6.7, 793),
            (14589.7, 4.5, 702), (14629.7, 17.2, 2692), (14668.4, 6.7, 777), (14710.1, 4.6, 536), (14748.8, 6.3, 776),
            (14789.2, 5.8, 695), (14830.6, 15.5, 2505), (14868.8, 16.5, 2682), (14909.4, 17.9, 2685), (14948.4, 6.7, 793),
            (14989.6, 4.3, 689), (15030.7, 12.9, 2690), (15069.7, 15.4, 2531), (15110.0, 10.7, 1651),
        ];
        BurstClock clock = Feed(new Guest(seen.Select(b => (b.Item1 - 14000, b.Item2, b.Item3)).ToList()), untilMs: 1130);
        BurstForecast f = Assert.IsType<BurstForecast>(clock.Forecast());
        Assert.InRange(f.Period.TotalMilliseconds, 39.5, 40.5);
        Assert.InRange(f.NextStart(TimeSpan.FromMilliseconds(1115)).TotalMilliseconds, 1148, 1152);
    }

    [Fact]
    public void ASteadyWriterHasNoForecast()
    {
        var clock = Feed(new Guest([], BackgroundPagesPerMs: 100), untilMs: 2000);
        Assert.Null(clock.Forecast());
    }

    [Fact]
    public void IrregularBurstsHaveNoForecast()
    {
        var random = new Random(3);
        var bursts = new List<(double, double, long)>();
        for (double t = 5; t < 3000; t += 15 + random.NextDouble() * 135) bursts.Add((t, 5, 1000));
        Assert.Null(Feed(new Guest(bursts), untilMs: 3000).Forecast());
    }

    [Fact]
    public void AForecastCountsTheShareOfEachBurstInAWindow()
    {
        var f = new BurstForecast(TimeSpan.FromMilliseconds(40), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(10), 2000);
        static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);
        Assert.Equal(0, f.BurstsWithin(Ms(112), Ms(25)), 6);          // between two bursts (110 → 140)
        Assert.Equal(1, f.BurstsWithin(Ms(135), Ms(20)), 6);          // all of the one at 140
        Assert.Equal(0.5, f.BurstsWithin(Ms(145), Ms(20)), 6);        // its second half
        Assert.Equal(2, f.BurstsWithin(Ms(100), Ms(50)), 6);          // 100 and 140
        Assert.Equal(0.3, f.BurstsWithin(Ms(57), Ms(6)), 6);          // 57–63 of the one at 60 (before the anchor)
        Assert.Equal(Ms(140), f.NextStart(Ms(101)));
        Assert.Equal(Ms(60), f.NextStart(Ms(60)));
        var writes = new BurstTimedWrites(f, 2000 * 4096.0, DirtyWorkingSet.Steady(150e6));
        Assert.Equal(0, writes.BytesWithin(Ms(112), Ms(25)), 6);
        Assert.Equal(1000 * 4096.0, writes.BytesWithin(Ms(145), Ms(20)), 6);
        Assert.Equal(2000 * 4096.0, writes.BytesWithin(Ms(135), Ms(20)), 6);
        // past one burst: the working-set curve over that many periods (a frame buffer rewrites its pages)
        Assert.Equal(150e6 * 0.080, writes.BytesWithin(Ms(100), Ms(50)), 3);
    }
}
