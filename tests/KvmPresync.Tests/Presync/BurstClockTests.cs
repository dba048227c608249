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
        /// <summary>Pages written in (a, b], those of a burst that starts after <paramref name="firstAfter"/> but not first counted × <paramref name="share"/>.</summary>
        public double Written(double a, double b, double firstAfter = double.NegativeInfinity, double share = 1)
        {
            double n = BackgroundPagesPerMs * (b - a);
            bool first = true;
            foreach (var (s, len, pages) in Bursts)
            {
                double overlap = Math.Min(b, s + len) - Math.Max(a, s);
                double counted = s < firstAfter || first ? 1 : share;
                if (s >= firstAfter) first = false;
                if (overlap > 0) n += counted * pages * overlap / len;
            }
            return n;
        }
    }

    /// <summary>
    /// Looks every <paramref name="lookMs"/> from 0 to <paramref name="untilMs"/>, harvesting every <paramref name="harvestMs"/>.
    /// <paramref name="rewritten"/>: the share of a burst's pages that the bursts before it since the harvest already dirtied,
    /// so they add nothing to the count (1: a frame buffer rewritten in place shows only in the first burst after a harvest).
    /// </summary>
    private static BurstClock Feed(Guest guest, double untilMs, double harvestMs = 100, double lookMs = 1.1, double rewritten = 0)
    {
        var clock = new BurstClock();
        double count = 0, lastHarvest = 0, previous = 0;
        for (double t = lookMs; t <= untilMs; t += lookMs)
        {
            if (t - lastHarvest >= harvestMs)
            {
                count = 0;
                lastHarvest = t;
            }
            count += guest.Written(t - lookMs, t, lastHarvest, 1 - rewritten);
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
        BurstClock clock = Feed(movie, untilMs: 4000, rewritten: 1);
        Assert.True(clock.Bursts.Count >= 6);
        BurstForecast f = Assert.IsType<BurstForecast>(clock.Forecast());
        Assert.InRange(f.Period.TotalMilliseconds, 39.5, 40.5);
    }

    [Theory]
    [InlineData(0.0)] // every burst's pages new since the harvest
    [InlineData(1.0)] // rewritten in place: only the first burst after each harvest shows
    public void BurstsWrittenAFewDozenPagesPerLookStillStartBursts(double rewritten)
    {
        // a host whose write-protect faults are slow (kvm_pvm, 29 Nov 2026: ~30 µs a fault) writes a burst's first pages after
        // a harvest at ~32 pages/ms, 25–40 per look: no one look jumps by MinBurstPages, the rise over consecutive looks does
        var random = new Random(4);
        var bursts = new List<(double, double, long)>();
        for (int i = 0; i < 150; i++)
        {
            long pages = 150 + random.Next(150);
            bursts.Add((2 + i * 20 + (random.NextDouble() * 2 - 1) * 0.5, pages / 32.0, pages));
        }
        BurstClock clock = Feed(new Guest(bursts, BackgroundPagesPerMs: 0.05), untilMs: 3000, rewritten: rewritten);
        BurstForecast f = Assert.IsType<BurstForecast>(clock.Forecast());
        Assert.InRange(f.Period.TotalMilliseconds, 19.7, 20.3);
        Assert.InRange(f.Length.TotalMilliseconds, 3, 12);
        Assert.InRange(f.Pages, 150, 300);
        // each start is the look before the rise's first jump, not the look at which it added up to a start
        Assert.All(clock.Bursts, b => Assert.InRange(OffGrid(b.Start.TotalMilliseconds), 0, 1.6));

        static double OffGrid(double ms) => Math.Abs(ms - 2 - Math.Round((ms - 2) / 20) * 20);
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
    public void AForecastHasAWholeBurstsPagesWhenLaterBurstsShowOnlyTheirNewOnes()
    {
        // a decoder: each frame writes 2,600 pages, 1,800 of them the same every frame; with a harvest every 200 ms only the
        // first burst after it shows all 2,600, the four after it 800 each. A launch harvests every round, so each of its
        // bursts dirties all 2,600 (measured on the movie guest: forecasts of 958 pages for frames of 2,600 when most
        // bursts were seen partly)
        var bursts = Enumerable.Range(0, 60).Select(i => (3 + i * 40.0, 8.0, 2600L)).ToList();
        BurstClock clock = Feed(new Guest(bursts), untilMs: 2400, harvestMs: 200, rewritten: 0.7);
        BurstForecast f = Assert.IsType<BurstForecast>(clock.Forecast());
        Assert.InRange(f.Period.TotalMilliseconds, 39.5, 40.5);
        Assert.InRange(f.Pages, 2300, 2700);
    }

    [Fact]
    public void BurstsSplitByADescheduledVcpuDoNotGiveAFractionOfThePeriod()
    {
        // frames every 40 ms, each writing for 30 ms; every other frame the vCPU leaves the CPU twice for 9 ms, splitting its
        // writes into three at 13.3 ms spacing — a grid of 13.3 ms then fits every start (the movie guest's clock gave 13.3 ms
        // forecasts 30 ms long). No forecast is better than that one; the true period is better still.
        var bursts = new List<(double, double, long)>();
        for (int i = 0; i < 60; i++)
        {
            double t = 3 + i * 40.0;
            if (i % 2 == 0) bursts.Add((t, 30, 2400));
            else for (int j = 0; j < 3; j++) bursts.Add((t + j * 13.3, 4.3, 800));
        }
        BurstForecast? f = Feed(new Guest(bursts), untilMs: 2400).Forecast();
        if (f is { } forecast) Assert.InRange(forecast.Period.TotalMilliseconds, 39.5, 40.5);
    }

    [Fact]
    public void AVcpuOffTheCpuForUnderEightMillisecondsDoesNotSplitABurst()
    {
        // each frame's writes pause for 6 ms in the middle: one burst per frame, as long as both halves together
        var bursts = new List<(double, double, long)>();
        for (int i = 0; i < 60; i++) { bursts.Add((3 + i * 40.0, 6, 1000)); bursts.Add((3 + i * 40.0 + 12, 6, 1000)); }
        BurstClock clock = Feed(new Guest(bursts), untilMs: 2400);
        BurstForecast f = Assert.IsType<BurstForecast>(clock.Forecast());
        Assert.InRange(f.Period.TotalMilliseconds, 39.5, 40.5);
        Assert.InRange(f.Length.TotalMilliseconds, 15, 20);
        Assert.All(clock.Bursts.Skip(1), b => Assert.InRange((b.Start.TotalMilliseconds - 3 + 1.1) % 40, 0, 3));
    }

    /// <summary>
    /// The bursts two movie runs' samplers saw (start ms, length ms, pages), 28 Nov 2026: frames the busy host stretched past
    /// the next one's start (53 ms, 29 ms long, starting 12 and 23 ms late). Numbering each start from its own spacing put
    /// every later one off by a period, and a unit that made 90 % of the spacings whole could only be half the period: the
    /// clock had no forecast at either launch.
    /// </summary>
    public static TheoryData<string> StretchedMovieRuns =>
    [
        "15345.8 7.5 724, 15385.8 29.1 2633, 15442.8 53.2 5106, 15532.5 9.7 873, 15550.8 7.5 788, 15585.6 18.6 2643, 15623.5 7.6 778, " +
        "15663.1 23.6 2251, 15704.3 22.5 2069, 15745.0 6.5 784, 15782.8 27.6 2693, 15825.4 20.5 2539, 15865.3 12.8 1631, 15903.8 33.4 2691, " +
        "15944.8 6.5 786, 15983.1 29.1 2686, 16025.1 7.5 799, 16065.9 26.3 2346, 16105.1 16.6 1450, 16145.6 8.7 744, 16184.0 25.1 2632, " +
        "16225.2 21.5 2587, 16265.0 9.7 807, 16304.3 8.9 751",
        "15079.6 18.7 2694, 15118.6 5.3 763, 15158.0 18.5 2229, 15197.8 9.7 1358, 15238.8 5.4 729, 15278.5 25.2 2678, 15330.5 24.6 2534, " +
        "15381.1 29.2 3451, 15437.1 6.0 683, 15476.8 20.6 2692, 15516.7 7.5 791, 15558.7 17.5 2269, 15598.1 13.9 1853, 15637.9 6.5 771, " +
        "15677.3 19.1 2691, 15718.1 20.4 2343, 15757.9 18.2 2371, 15799.0 12.8 1822, 15838.5 5.5 767, 15879.2 18.8 2638, 15918.4 18.3 2504, " +
        "15958.4 12.0 1804, 15998.5 23.9 2676, 16037.8 6.5 772",
    ];

    [Theory]
    [MemberData(nameof(StretchedMovieRuns))]
    public void AMeasuredMovieRunWithStretchedFramesGivesAForecast(string seen)
    {
        var bursts = seen.Split(", ").Select(b => b.Split(' ').Select(double.Parse).ToArray()).ToList();
        double first = bursts[0][0] - 5, last = bursts[^1][0] - first;
        BurstClock clock = Feed(new Guest(bursts.Select(b => (b[0] - first, b[1], (long)b[2])).ToList()), untilMs: last + 12);
        BurstForecast f = Assert.IsType<BurstForecast>(clock.Forecast());
        Assert.InRange(f.Period.TotalMilliseconds, 39.5, 40.5);
        // the last frame started on the grid
        double off = (TimeSpan.FromMilliseconds(last) - f.NextStart(TimeSpan.FromMilliseconds(last - f.Period.TotalMilliseconds / 2))).TotalMilliseconds;
        Assert.InRange(off, -3, 3);
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

    [Fact]
    public void ABurstThatStoppedWritingHasNoWritesLeftInTheForecast()
    {
        // frames every 40 ms; most write for 12 ms, so the forecast's length is about 12 ms; the last one, at 403, for 4 ms
        var bursts = new List<(double, double, long)>();
        for (int i = 0; i < 10; i++) bursts.Add((3 + i * 40.0, 12, 1200));
        bursts.Add((403, 4, 400));
        var guest = new Guest(bursts);
        static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);
        // 2 ms after its last write the burst may still be writing: no end yet, and the forecast counts its remaining share
        BurstForecast writing = Feed(guest, untilMs: 409).Forecast() ?? throw new Xunit.Sdk.XunitException("no forecast");
        Assert.Null(writing.EndedAt);
        Assert.True(writing.BurstsWithin(Ms(409), Ms(20)) > 0.2, $"{writing.BurstsWithin(Ms(409), Ms(20))} of a burst");
        // 10 ms after it (more than MaxGap): it ended, near 407, and writes nothing more; the next frame, at 443, still counts whole
        BurstForecast ended = Feed(guest, untilMs: 418).Forecast() ?? throw new Xunit.Sdk.XunitException("no forecast");
        Assert.InRange(ended.EndedAt!.Value.TotalMilliseconds, 406, 409);
        Assert.Equal(0, ended.BurstsWithin(Ms(418), Ms(20)), 6);
        Assert.Equal(1, ended.BurstsWithin(Ms(418), Ms(45)), 1);
        Assert.Equal(ended.Period, writing.Period); // the fit is the same
    }

    [Fact]
    public void AForecastOfABurstThatEndedCountsOnlyItsWritesBeforeTheEnd()
    {
        static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);
        var f = new BurstForecast(Ms(40), Ms(100), Ms(10), 2000) { EndedAt = Ms(104) };
        Assert.Equal(0.4, f.BurstsWithin(Ms(100), Ms(10)), 6); // 100–104 of 10 ms: what it wrote before it stopped
        Assert.Equal(0, f.BurstsWithin(Ms(104), Ms(20)), 6);
        Assert.Equal(0.5, f.BurstsWithin(Ms(104), Ms(41)), 6); // the next one, from 140, half of it
        Assert.Equal(0.6, (f with { EndedAt = null }).BurstsWithin(Ms(104), Ms(20)), 6);
    }
    [Fact]
    public void ABurstStillWritingHasOnlyItsUnwrittenPagesLeftInTheForecast()
    {
        // frames every 40 ms of 1,200 pages over 12 ms; the last one, at 403, writes 1,100 pages in 3 ms
        var bursts = new List<(double, double, long)>();
        for (int i = 0; i < 10; i++) bursts.Add((3 + i * 40.0, 12, 1200));
        bursts.Add((403, 3, 1100));
        static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);
        BurstForecast f = Feed(new Guest(bursts), untilMs: 408).Forecast() ?? throw new Xunit.Sdk.XunitException("no forecast");
        // 2 ms after its last write it may still be writing: the clock says what it wrote so far
        Assert.Null(f.EndedAt);
        Assert.InRange(f.Writing!.Value.Pages, 1000, 1100);
        Assert.InRange(f.Writing!.Value.Start.TotalMilliseconds, 400, 404);
        // by its time it would have 7 of its 12 ms left (0.58 of a burst); by its pages, at most a tenth
        Assert.InRange((f with { Writing = null }).BurstsWithin(Ms(408), Ms(20)), 0.5, 0.7);
        Assert.InRange(f.BurstsWithin(Ms(408), Ms(20)), 0, 1 - 1000.0 / 1200);
    }
    [Fact]
    public void AForecastOfABurstStillWritingCountsAtMostItsUnwrittenShare()
    {
        static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);
        // bursts of 2,000 pages over 10 ms from t = 100; the one at 100 has written 1,500 pages by 104
        var f = new BurstForecast(Ms(40), Ms(100), Ms(10), 2000) { Writing = new BurstProgress(Ms(100), 1500) };
        Assert.Equal(0.25, f.BurstsWithin(Ms(104), Ms(20)), 6);            // its last quarter, not 6 ms of 10
        Assert.Equal(0.125, f.BurstsWithin(Ms(104), Ms(3)), 6);            // spread over the 6 ms it has left
        Assert.Equal(1.25, f.BurstsWithin(Ms(104), Ms(46)), 6);            // the next one, at 140, counts whole
        Assert.Equal(0, (f with { Writing = new BurstProgress(Ms(100), 2600) }).BurstsWithin(Ms(104), Ms(20)), 6); // larger than the quartile: done
        // a burst that wrote slowly so far keeps its time share (never more than the time says)
        Assert.Equal(0.6, (f with { Writing = new BurstProgress(Ms(100), 100) }).BurstsWithin(Ms(104), Ms(20)), 6);
        // progress seen of an earlier burst (seen start 61: the one at 60) says nothing about the one at 100
        Assert.Equal(0.6, (f with { Writing = new BurstProgress(Ms(61), 1900) }).BurstsWithin(Ms(104), Ms(20)), 6);
    }
}
