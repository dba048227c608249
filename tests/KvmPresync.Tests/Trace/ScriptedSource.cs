using KvmPresync.Core;
using KvmPresync.Memory;
using KvmPresync.Trace;

namespace KvmPresync.Tests.Trace;

/// <summary>A hand-made source: round k's pages (<c>writes[k]</c>) are harvestable at t = k × 100 ms — exactly the
/// simulator's round k at its default interval.</summary>
internal sealed class ScriptedSource(long pageCount, IReadOnlyList<long[]> writes) : IReplayDirtyPageSource
{
    public static readonly TimeSpan Round = TimeSpan.FromMilliseconds(100);

    private int _next;

    /// <summary>Round k's writes: every page whose schedule holds k.</summary>
    public static List<long[]> Schedule(int rounds, params (long Page, int[] Rounds)[] pages) =>
        Enumerable.Range(0, rounds).Select(k => pages.Where(p => p.Rounds.Contains(k)).Select(p => p.Page).ToArray()).ToList();

    public string Workload => "scripted";

    public long PageCount => pageCount;

    public int PageSize => 4096;

    public TimeSpan Interval => Round;

    public TimeSpan Now { get; private set; }

    public bool Exhausted => _next >= writes.Count;

    public void AdvanceTo(TimeSpan time) => Now = time >= Now ? time : throw new ArgumentOutOfRangeException(nameof(time));

    public DirtyHarvest Harvest(DirtyBitmap into)
    {
        long pages = 0;
        for (; _next < writes.Count && _next * Round <= Now; _next++)
            foreach (long p in writes[_next])
                if (!into[p]) { into.Set(p); pages++; }
        return new DirtyHarvest(Now, pages);
    }
}
