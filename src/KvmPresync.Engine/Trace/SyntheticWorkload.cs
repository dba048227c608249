using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Engine;

namespace KvmPresync.Trace;

/// <summary>
/// Generates a synthetic workload's dirty pages on demand, interval by interval, as an <see cref="IReplayDirtyPageSource"/>
/// (no file needed, so a 16 M-page guest costs only its bitmaps). Deterministic for a given spec and seed: each
/// behaviour draws from its own generator seeded from (seed, behaviour index).
/// Interval k covers (k·I, (k+1)·I] and is harvestable once the clock reaches (k+1)·I.
/// </summary>
public sealed class SyntheticWorkload : IReplayDirtyPageSource
{
    private readonly SyntheticWorkloadSpec _spec;
    private readonly IBehaviourGenerator[] _generators;
    private readonly DirtyBitmap _harvest;
    private readonly long _intervalCount;
    private long _nextInterval;

    public SyntheticWorkload(SyntheticWorkloadSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        _spec = spec;
        _intervalCount = spec.Duration.Ticks / spec.Interval.Ticks;
        _harvest = new DirtyBitmap(spec.PageCount);
        _generators = new IBehaviourGenerator[spec.Behaviours.Count];
        for (int i = 0; i < _generators.Length; i++)
        {
            var random = new Random(BehaviourSeed(spec.Seed, i));
            _generators[i] = spec.Behaviours[i] switch
            {
                HotSetBehaviour b => new HotSetGenerator(b, random),
                PeriodicBehaviour b => new PeriodicGenerator(b),
                BurstyBehaviour b => new BurstyGenerator(b, random),
                RandomSparseBehaviour b => new RandomSparseGenerator(b, random),
                SequentialBehaviour b => new SequentialGenerator(b),
                var other => throw new ArgumentException($"unknown synthetic behaviour {other.GetType().Name}", nameof(spec)),
            };
        }
    }

    public SyntheticWorkloadSpec Spec => _spec;

    public string Workload => _spec.Name;

    public long PageCount => _spec.PageCount;

    public int PageSize => _spec.PageSize;

    public TimeSpan Interval => _spec.Interval;

    /// <summary>Number of intervals the workload produces (Duration / Interval).</summary>
    public long IntervalCount => _intervalCount;

    public TimeSpan Now { get; private set; }

    public bool Exhausted => _nextInterval >= _intervalCount;

    public void AdvanceTo(TimeSpan time)
    {
        if (time < Now) throw new ArgumentOutOfRangeException(nameof(time), time, $"the workload clock cannot go backwards (now {Now})");
        Now = time;
    }

    public DirtyHarvest Harvest(DirtyBitmap into)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (into.PageCount != PageCount)
            throw new ArgumentException($"bitmap covers {into.PageCount} pages, workload {Workload} covers {PageCount}", nameof(into));
        long due = Math.Min(_intervalCount, Now.Ticks / _spec.Interval.Ticks);
        if (due <= _nextInterval) return new DirtyHarvest(Now, 0);
        _harvest.Clear();
        ulong intervals = 0;
        for (; _nextInterval < due; _nextInterval++, intervals++)
            GenerateInterval(_nextInterval, _harvest);
        into.Or(_harvest);
        return new DirtyHarvest(Now, _harvest.Count(), intervals);
    }

    /// <summary>ORs the pages of interval <paramref name="k"/> into <paramref name="into"/>. Intervals must be generated in order.</summary>
    private void GenerateInterval(long k, DirtyBitmap into)
    {
        Span<ulong> words = into.Words;
        foreach (var g in _generators) g.Generate(k, words);
    }

    /// <summary>Deterministic across processes (HashCode is randomized per process, so it must not be used here).</summary>
    private static int BehaviourSeed(int seed, int index)
    {
        ulong x = (ulong)(uint)seed * 0x9E3779B97F4A7C15UL + (ulong)index * 0xBF58476D1CE4E5B9UL + 0x5EED;
        x ^= x >> 31;
        x *= 0x94D049BB133111EBUL;
        x ^= x >> 29;
        return (int)(x & 0x7FFFFFFF);
    }

    private interface IBehaviourGenerator
    {
        void Generate(long interval, Span<ulong> words);
    }

    private static void Set(Span<ulong> words, long page) => words[(int)(page >> 6)] |= 1UL << (int)(page & 63);

    private sealed class HotSetGenerator(HotSetBehaviour b, Random random) : IBehaviourGenerator
    {
        public void Generate(long interval, Span<ulong> words)
        {
            if (b.WriteProbability >= 1)
            {
                TraceFormat.SetRange(words, b.FirstPage, b.FirstPage + b.Pages);
                return;
            }
            for (long i = 0; i < b.Pages; i++)
                if (random.NextDouble() < b.WriteProbability) Set(words, b.FirstPage + i);
        }
    }

    private sealed class PeriodicGenerator(PeriodicBehaviour b) : IBehaviourGenerator
    {
        public void Generate(long interval, Span<ulong> words)
        {
            long period = b.PeriodIntervals;
            if (b.Phase is { } phase)
            {
                if ((interval + phase) % period == 0) TraceFormat.SetRange(words, b.FirstPage, b.FirstPage + b.Pages);
                return;
            }
            long first = (period - interval % period) % period; // smallest i with (interval + i) mod period = 0
            for (long i = first; i < b.Pages; i += period) Set(words, b.FirstPage + i);
        }
    }

    private sealed class BurstyGenerator(BurstyBehaviour b, Random random) : IBehaviourGenerator
    {
        private readonly HashSet<long> _inBurst = [];
        private readonly List<long> _ended = [];

        public void Generate(long interval, Span<ulong> words)
        {
            // New bursts: Binomial(idle pages, q) approximated by its mean with a random remainder.
            double expected = (b.Pages - _inBurst.Count) * b.BurstStartProbability;
            long starts = (long)expected + (random.NextDouble() < expected - Math.Floor(expected) ? 1 : 0);
            for (long s = 0; s < starts && _inBurst.Count < b.Pages; s++)
                _inBurst.Add(b.FirstPage + random.NextInt64(b.Pages));

            double end = 1.0 / b.MeanBurstIntervals;
            _ended.Clear();
            foreach (long page in _inBurst)
            {
                Set(words, page);
                if (random.NextDouble() < end) _ended.Add(page);
            }
            foreach (long page in _ended) _inBurst.Remove(page);
        }
    }

    private sealed class RandomSparseGenerator(RandomSparseBehaviour b, Random random) : IBehaviourGenerator
    {
        public void Generate(long interval, Span<ulong> words)
        {
            for (long i = 0; i < b.WritesPerInterval; i++) Set(words, b.FirstPage + random.NextInt64(b.Pages));
        }
    }

    private sealed class SequentialGenerator(SequentialBehaviour b) : IBehaviourGenerator
    {
        private long _cursor;

        public void Generate(long interval, Span<ulong> words)
        {
            long left = b.PagesPerInterval;
            while (left > 0)
            {
                long run = Math.Min(left, b.Pages - _cursor);
                TraceFormat.SetRange(words, b.FirstPage + _cursor, b.FirstPage + _cursor + run);
                _cursor = (_cursor + run) % b.Pages;
                left -= run;
            }
        }
    }
}
