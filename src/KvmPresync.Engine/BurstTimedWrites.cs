namespace KvmPresync.Engine;

/// <summary>
/// What a guest whose writes come in timed bursts (<see cref="BurstForecast"/>) dirties from a given moment on: the share of
/// a burst's bytes whose writes fall in the window, up to one burst; beyond one burst, what its working-set curve gives for
/// that many periods (the bursts of a frame buffer rewrite the same pages). Unlike the curve alone, this knows that a window
/// between two bursts dirties next to nothing and one that holds a burst dirties all of it — what decides where a pause
/// should fall.
/// </summary>
/// <param name="Bursts">When the bursts come.</param>
/// <param name="BytesPerBurst">Wire bytes of one burst's pages.</param>
/// <param name="WorkingSet">The guest's working-set curve (for windows holding more than one burst).</param>
public readonly record struct BurstTimedWrites(BurstForecast Bursts, double BytesPerBurst, DirtyWorkingSet WorkingSet)
{
    /// <summary>A forecast's bursts at <paramref name="pageBytes"/> wire bytes a page, with <paramref name="workingSet"/>; null without a forecast.</summary>
    public static BurstTimedWrites? Of(BurstForecast? bursts, long pageBytes, DirtyWorkingSet workingSet) =>
        bursts is { } f ? new BurstTimedWrites(f, f.Pages * (double)pageBytes, workingSet) : null;

    /// <summary>Distinct bytes expected dirtied within [<paramref name="from"/>, <paramref name="from"/> + <paramref name="window"/>] (dirty source's clock).</summary>
    public double BytesWithin(TimeSpan from, TimeSpan window)
    {
        double n = Bursts.BurstsWithin(from, window);
        if (n <= 1) return n * BytesPerBurst;
        return Math.Max(BytesPerBurst, WorkingSet.BytesWithin(Bursts.Period * n));
    }
}
