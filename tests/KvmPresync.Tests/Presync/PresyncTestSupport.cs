using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;

namespace KvmPresync.Tests.Presync;

internal static class PresyncTestSupport
{
    public static DirtyBitmap Bitmap(long pageCount, params long[] pages)
    {
        var b = new DirtyBitmap(pageCount);
        foreach (long p in pages) b.Set(p);
        return b;
    }

    /// <summary>Feeds <paramref name="rounds"/> rounds; <paramref name="dirty"/>(round) lists the pages dirtied in each.</summary>
    public static void Feed(ChangePredictor predictor, int rounds, Func<int, IEnumerable<long>> dirty, int firstRound = 0)
    {
        var b = new DirtyBitmap(predictor.PageCount);
        for (int r = firstRound; r < firstRound + rounds; r++)
        {
            b.Clear();
            foreach (long p in dirty(r)) b.Set(p);
            predictor.Update(b);
        }
    }

    public static IEnumerable<long> Range(long first, long count)
    {
        for (long i = 0; i < count; i++) yield return first + i;
    }
}
