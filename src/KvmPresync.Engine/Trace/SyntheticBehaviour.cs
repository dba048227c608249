using KvmPresync.Core;
namespace KvmPresync.Trace;

/// <summary>
/// One kind of write behaviour over a region of guest pages [FirstPage, FirstPage + Pages). A synthetic workload
/// is a mixture of these (regions may overlap; a page dirtied by several behaviours is dirty once).
/// </summary>
public abstract record SyntheticBehaviour(long FirstPage, long Pages)
{
    internal void Validate(long pageCount)
    {
        if (FirstPage < 0 || Pages < 0 || FirstPage > pageCount - Pages)
            throw new ArgumentOutOfRangeException(nameof(Pages), $"{GetType().Name} region [{FirstPage}, {FirstPage}+{Pages}) lies outside the guest's {pageCount} pages");
        ValidateParameters();
    }

    private protected abstract void ValidateParameters();
}

/// <summary>Hot set: each page is rewritten in every interval with probability <paramref name="WriteProbability"/> (1 = always).</summary>
public sealed record HotSetBehaviour(long FirstPage, long Pages, double WriteProbability = 1.0) : SyntheticBehaviour(FirstPage, Pages)
{
    private protected override void ValidateParameters()
    {
        if (!(WriteProbability > 0 && WriteProbability <= 1))
            throw new ArgumentOutOfRangeException(nameof(WriteProbability), WriteProbability, "hot-set write probability must be in (0, 1]");
    }
}

/// <summary>
/// Periodic: page FirstPage+i is written in intervals k with (k + i) mod <paramref name="PeriodIntervals"/> = 0 (phases
/// staggered across the region), or, with a <paramref name="Phase"/>, the whole region in intervals k with
/// (k + Phase) mod period = 0 (e.g. a frame buffer slot rewritten as a block).
/// </summary>
public sealed record PeriodicBehaviour(long FirstPage, long Pages, int PeriodIntervals, int? Phase = null) : SyntheticBehaviour(FirstPage, Pages)
{
    private protected override void ValidateParameters()
    {
        if (PeriodIntervals < 1) throw new ArgumentOutOfRangeException(nameof(PeriodIntervals), PeriodIntervals, "period must be at least 1 interval");
        if (Phase is < 0) throw new ArgumentOutOfRangeException(nameof(Phase), Phase, "phase must not be negative");
    }
}

/// <summary>
/// Bursty: an idle page starts a burst with probability <paramref name="BurstStartProbability"/> per interval; during a
/// burst it is written every interval; a burst ends after each interval with probability 1 / <paramref name="MeanBurstIntervals"/>.
/// </summary>
public sealed record BurstyBehaviour(long FirstPage, long Pages, double BurstStartProbability, double MeanBurstIntervals) : SyntheticBehaviour(FirstPage, Pages)
{
    private protected override void ValidateParameters()
    {
        if (!(BurstStartProbability > 0 && BurstStartProbability <= 1))
            throw new ArgumentOutOfRangeException(nameof(BurstStartProbability), BurstStartProbability, "burst start probability must be in (0, 1]");
        if (!(MeanBurstIntervals >= 1))
            throw new ArgumentOutOfRangeException(nameof(MeanBurstIntervals), MeanBurstIntervals, "mean burst length must be at least 1 interval");
    }
}

/// <summary>Random sparse writes: <paramref name="WritesPerInterval"/> uniformly random pages of the region per interval.</summary>
public sealed record RandomSparseBehaviour(long FirstPage, long Pages, long WritesPerInterval) : SyntheticBehaviour(FirstPage, Pages)
{
    private protected override void ValidateParameters()
    {
        if (WritesPerInterval < 0) throw new ArgumentOutOfRangeException(nameof(WritesPerInterval), WritesPerInterval, "writes per interval must not be negative");
        if (WritesPerInterval > 0 && Pages == 0) throw new ArgumentOutOfRangeException(nameof(Pages), Pages, "random writes need a non-empty region");
    }
}

/// <summary>Sequential streaming: a cursor writes <paramref name="PagesPerInterval"/> consecutive pages per interval through the region, wrapping at its end.</summary>
public sealed record SequentialBehaviour(long FirstPage, long Pages, long PagesPerInterval) : SyntheticBehaviour(FirstPage, Pages)
{
    private protected override void ValidateParameters()
    {
        if (PagesPerInterval < 0 || PagesPerInterval > Pages)
            throw new ArgumentOutOfRangeException(nameof(PagesPerInterval), PagesPerInterval, "pages per interval must be in 0..region size");
    }
}

/// <summary>A seeded, parameterised synthetic guest: geometry, interval, length and a mixture of behaviours.</summary>
public sealed record SyntheticWorkloadSpec
{
    public required long PageCount { get; init; }

    public int PageSize { get; init; } = 4096;

    public TimeSpan Interval { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Length of the workload; the source is exhausted after the interval ending at this time.</summary>
    public required TimeSpan Duration { get; init; }

    public int Seed { get; init; } = 1;

    public string Name { get; init; } = "synthetic";

    public required IReadOnlyList<SyntheticBehaviour> Behaviours { get; init; }

    public void Validate()
    {
        if (PageCount < 1) throw new ArgumentOutOfRangeException(nameof(PageCount), PageCount, "page count must be positive");
        if (PageSize < 1) throw new ArgumentOutOfRangeException(nameof(PageSize), PageSize, "page size must be positive");
        if (Interval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Interval), Interval, "interval must be positive");
        if (Duration < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Duration), Duration, "duration must not be negative");
        ArgumentNullException.ThrowIfNull(Behaviours);
        foreach (var b in Behaviours) b.Validate(PageCount);
    }

    /// <summary>
    /// A mixture shaped like a desktop application of <paramref name="pageCount"/> pages: 2% hot set, 3% periodic
    /// (periods 2..8), 5% bursty, random sparse writes and a streaming buffer. For scale tests and demos.
    /// </summary>
    public static SyntheticWorkloadSpec Mixed(long pageCount, TimeSpan duration, int seed = 1, TimeSpan? interval = null)
    {
        long p = pageCount;
        long hot = p / 50, periodic = p * 3 / 100, bursty = p / 20, stream = p / 10;
        long periodicEach = periodic / 4;
        var behaviours = new List<SyntheticBehaviour>
        {
            new HotSetBehaviour(0, hot),
            new PeriodicBehaviour(hot, periodicEach, 2),
            new PeriodicBehaviour(hot + periodicEach, periodicEach, 3),
            new PeriodicBehaviour(hot + 2 * periodicEach, periodicEach, 5),
            new PeriodicBehaviour(hot + 3 * periodicEach, periodicEach, 8),
            new BurstyBehaviour(hot + periodic, bursty, 0.01, 6),
            new SequentialBehaviour(hot + periodic + bursty, stream, Math.Max(1, stream / 200)),
            new RandomSparseBehaviour(0, p, Math.Max(1, p / 2000)),
        };
        return new SyntheticWorkloadSpec
        {
            PageCount = pageCount,
            Duration = duration,
            Seed = seed,
            Interval = interval ?? TimeSpan.FromMilliseconds(50),
            Name = "synthetic-mixed",
            Behaviours = behaviours,
        };
    }
}
