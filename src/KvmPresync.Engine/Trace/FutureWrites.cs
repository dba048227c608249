using System.Numerics;
using KvmPresync.Engine;
using KvmPresync.Memory;

namespace KvmPresync.Trace;

/// <summary>
/// Every page's future writes, as the rounds of a simulation harvest them: the knowledge <see cref="SyncPolicy.Oracle"/>
/// ranks by. Built by replaying a source twice (count, then fill) with the simulator's round clock, so round k here is
/// the simulator's round k.
/// </summary>
/// <remarks>
/// Compressed sparse rows over the pages written at least once: a bit per page (written or not), the written pages before
/// each 64-page word (4 bytes per word), the start of each written page's row (8 bytes per written page), and each write's
/// round number, ascending per page (2 bytes while rounds ≤ 65,536, else 4). So a guest of 1 Mi pages replayed for 600
/// rounds costs 192 KiB plus 8 bytes per written page plus 2 bytes per page-round written — pages never written cost one
/// bit. A lookup is a binary search of one page's row.
/// </remarks>
public sealed class FutureWrites : INextWriteOracle
{
    private readonly ulong[] _written;
    private readonly int[] _rankBase;   // written pages in words before w
    private readonly long[] _rowStart;  // per written page (by rank), plus the end
    private readonly ushort[]? _rounds16;
    private readonly int[]? _rounds32;

    private FutureWrites(long pageCount, TimeSpan roundInterval, long rounds, ulong[] written, int[] rankBase, long[] rowStart,
        ushort[]? rounds16, int[]? rounds32)
    {
        PageCount = pageCount;
        RoundInterval = roundInterval;
        Rounds = rounds;
        _written = written;
        _rankBase = rankBase;
        _rowStart = rowStart;
        _rounds16 = rounds16;
        _rounds32 = rounds32;
    }

    public long PageCount { get; }

    public TimeSpan RoundInterval { get; }

    /// <summary>Rounds replayed (0 … Rounds − 1): writes after the last one are beyond the horizon.</summary>
    public long Rounds { get; }

    /// <summary>Pages written in at least one round.</summary>
    public long WrittenPages => _rowStart.Length - 1;

    /// <summary>Page-rounds written (one entry each).</summary>
    public long Writes => _rowStart[^1];

    /// <summary>Bytes the index holds.</summary>
    public long MemoryBytes => _written.Length * 8L + _rankBase.Length * 4L + _rowStart.Length * 8L
                               + (_rounds16?.LongLength * 2 ?? 0) + (_rounds32?.LongLength * 4 ?? 0);

    public ulong WrittenWord(int word) => _written[word];

    public long NextWriteRound(long page, long round)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(page);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(page, PageCount);
        int word = (int)(page >> 6);
        ulong bit = 1UL << (int)(page & 63);
        if ((_written[word] & bit) == 0) return -1;
        long rank = _rankBase[word] + BitOperations.PopCount(_written[word] & (bit - 1));
        long lo = _rowStart[rank], hi = _rowStart[rank + 1]; // first entry > round in [lo, hi)
        while (lo < hi)
        {
            long mid = lo + ((hi - lo) >> 1);
            if (RoundAt(mid) <= round) lo = mid + 1;
            else hi = mid;
        }
        return lo < _rowStart[rank + 1] ? RoundAt(lo) : -1;
    }

    public long FirstWriteRound(long page)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(page);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(page, PageCount);
        int word = (int)(page >> 6);
        ulong bit = 1UL << (int)(page & 63);
        if ((_written[word] & bit) == 0) return -1;
        return RoundAt(_rowStart[_rankBase[word] + BitOperations.PopCount(_written[word] & (bit - 1))]);
    }

    /// <summary>The future writes a simulation with <paramref name="options"/> will see: its round interval, its horizon
    /// (warm-up + duration, or the whole source).</summary>
    public static FutureWrites For(Func<IReplayDirtyPageSource> open, SimulationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Record(open, options.RoundInterval, options.Duration is { } d ? options.WarmUp + d : null);
    }

    /// <summary>
    /// Replays the sources <paramref name="open"/> returns (called twice; each is disposed when it is IDisposable; both
    /// must replay the same writes) in rounds of <paramref name="roundInterval"/> from the source's clock, as
    /// <see cref="Simulator.Run"/> does: while t ≤ <paramref name="until"/>, or until the source is exhausted.
    /// </summary>
    public static FutureWrites Record(Func<IReplayDirtyPageSource> open, TimeSpan roundInterval, TimeSpan? until = null)
    {
        ArgumentNullException.ThrowIfNull(open);
        if (roundInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(roundInterval), roundInterval, "round interval must be positive");

        // Pass 1: writes per page.
        int[]? counts = null;
        long rounds = Replay(open, roundInterval, until, ref counts, onWrite: null);
        long pageCount = counts!.LongLength;

        var written = new ulong[(pageCount + 63) >> 6];
        var rankBase = new int[written.Length];
        long writtenPages = 0;
        for (int w = 0; w < written.Length; w++)
        {
            rankBase[w] = checked((int)writtenPages);
            ulong bits = 0;
            for (int b = 0; b < 64 && ((long)w << 6) + b < pageCount; b++)
                if (counts[((long)w << 6) + b] != 0) bits |= 1UL << b;
            written[w] = bits;
            writtenPages += BitOperations.PopCount(bits);
        }
        var rowStart = new long[writtenPages + 1];
        long rank = 0, entries = 0;
        for (long p = 0; p < pageCount; p++)
        {
            if (counts[p] == 0) continue;
            rowStart[rank++] = entries;
            entries += counts[p];
        }
        rowStart[rank] = entries;
        if (entries > Array.MaxLength)
            throw new InvalidOperationException($"the source has {entries} page-rounds written, more than the oracle's index can hold ({Array.MaxLength})");
        bool small = rounds <= ushort.MaxValue + 1;
        ushort[]? rounds16 = small ? new ushort[entries] : null;
        int[]? rounds32 = small ? null : new int[entries];
        if (!small && rounds > int.MaxValue)
            throw new InvalidOperationException($"{rounds} rounds are more than the oracle's index can count");

        // Pass 2: each write's round, in round order, so every row comes out ascending.
        Array.Clear(counts); // now: entries filled per page
        long again = Replay(open, roundInterval, until, ref counts, (page, round) =>
        {
            int word = (int)(page >> 6);
            ulong bit = 1UL << (int)(page & 63);
            long r = rankBase[word] + BitOperations.PopCount(written[word] & (bit - 1));
            long at = (written[word] & bit) == 0 ? -1 : rowStart[r] + counts[page] - 1; // Replay has already counted this write
            if (at < 0 || at >= rowStart[r + 1])
                throw new InvalidOperationException("the source replayed different writes the second time; the oracle needs a deterministic source");
            if (rounds16 is not null) rounds16[at] = (ushort)round;
            else rounds32![at] = (int)round;
        });
        if (again != rounds)
            throw new InvalidOperationException($"the source replayed {again} rounds the second time, {rounds} the first; the oracle needs a deterministic source");
        return new FutureWrites(pageCount, roundInterval, rounds, written, rankBase, rowStart, rounds16, rounds32);
    }

    private long RoundAt(long entry) => _rounds16 is not null ? _rounds16[entry] : _rounds32![entry];

    /// <summary>One replay in the simulator's rounds: counts each page's writes into <paramref name="counts"/> (allocated on
    /// the first call) and reports each write. Returns the rounds replayed.</summary>
    private static long Replay(Func<IReplayDirtyPageSource> open, TimeSpan interval, TimeSpan? until, ref int[]? counts, Action<long, long>? onWrite)
    {
        IReplayDirtyPageSource source = open() ?? throw new InvalidOperationException("the source factory returned null");
        try
        {
            counts ??= new int[source.PageCount];
            if (counts.LongLength != source.PageCount)
                throw new InvalidOperationException($"the source covers {source.PageCount} pages the second time, {counts.LongLength} the first");
            var harvest = new DirtyBitmap(source.PageCount);
            TimeSpan t = source.Now;
            for (long round = 0; ; round++)
            {
                source.AdvanceTo(t);
                harvest.Clear();
                source.Harvest(harvest);
                foreach (long page in harvest)
                {
                    counts[page]++;
                    onWrite?.Invoke(page, round);
                }
                bool last = until is { } e ? t + interval > e : source.Exhausted;
                if (last) return round + 1;
                t += interval;
            }
        }
        finally
        {
            (source as IDisposable)?.Dispose();
        }
    }
}
