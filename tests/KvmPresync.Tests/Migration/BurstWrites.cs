using System.Diagnostics;
using KvmPresync.Core;
using KvmPresync.Memory;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// How long a paced guest's burst of writes lasts right after a harvest on this host, measured on its own dirty log: whether
/// its bursts can be timed at all. After each harvest the first write to every page faults (the write protection the clear
/// put back); kvm_pvm took ~5 µs a fault on an earlier kernel (a movie frame's 2,400 pages in 13 ms) and ~30 µs on
/// 6.18.44-fc-v669 (29 Nov 2026: 70 ms, longer than the 40 ms frame, so the frames run together and no burst clock can time
/// them). Decides which behaviour a test asserts, from a measurement, never from the result under test.
/// </summary>
internal static class BurstWrites
{
    /// <summary>A rise of fewer pages between two looks is a trickle, not a burst's writes.</summary>
    private const long MinRisePages = 16;

    /// <summary>
    /// Harvests <paramref name="log"/>, then looks at it about every millisecond: the first burst after the harvest, from its
    /// first rise to the last one before 10 ms without any (up to 1 s). Clears the log (what a sync round's harvest does).
    /// </summary>
    public static (long Pages, double Ms) FirstAfterHarvest(IDirtyPageSource log)
    {
        var peek = (IDirtyPagePeek)log;
        var scratch = new DirtyBitmap(log.PageCount);
        log.Harvest(scratch);
        var clock = Stopwatch.StartNew();
        long last = 0, startCount = 0;
        double? start = null, end = null;
        double previousLook = 0;
        while (clock.Elapsed.TotalSeconds < 1)
        {
            double now = clock.Elapsed.TotalMilliseconds;
            long count = peek.Peek().DirtyPages;
            if (count - last >= MinRisePages)
            {
                if (start is null) (start, startCount) = (previousLook, last);
                end = now;
            }
            else if (end is { } e && now - e > 10) break;
            last = count;
            previousLook = now;
            Thread.Sleep(1);
        }
        return start is { } s ? (last - startCount, end!.Value - s) : (0, 0);
    }
}
