namespace KvmPresync.Engine;

/// <summary>
/// How many distinct bytes a guest dirties within a window of a given length: its working-set curve, from two measured
/// points. <see cref="LongWindow"/> is the sync round (the harvest interval) and <see cref="LongBytesPerSecond"/> its
/// distinct dirty rate; <see cref="ShortWindow"/> is a short probe window inside a round and <see cref="ShortBytesPerSecond"/>
/// the distinct rate over it. A guest that rewrites the same pages many times a round (a frame buffer every 40 ms) dirties
/// far more than <c>LongBytesPerSecond × t</c> in a window much shorter than a round: the live rounds after a launch are
/// such windows. The curve is linear through the origin up to the short window, linear between the two points, and the long
/// rate beyond the round. Without a short point it is the long rate throughout.
/// </summary>
public readonly record struct DirtyWorkingSet(double LongBytesPerSecond, TimeSpan LongWindow, double ShortBytesPerSecond = 0, TimeSpan ShortWindow = default)
{
    /// <summary>A guest dirtying at one rate at every time scale.</summary>
    public static DirtyWorkingSet Steady(double bytesPerSecond) => new(bytesPerSecond, TimeSpan.Zero);

    /// <summary>The curve has a measured short point.</summary>
    public bool HasShortWindow => ShortWindow > TimeSpan.Zero && LongWindow > ShortWindow && ShortBytesPerSecond > 0;

    /// <summary>Expected distinct bytes dirtied within a window of length <paramref name="window"/>.</summary>
    public double BytesWithin(TimeSpan window)
    {
        double t = window.TotalSeconds;
        if (!(t > 0)) return 0;
        double longRate = Math.Max(0, LongBytesPerSecond);
        if (!HasShortWindow) return longRate * t;
        double ts = ShortWindow.TotalSeconds, tl = LongWindow.TotalSeconds;
        double atShort = ShortBytesPerSecond * ts;
        double atLong = Math.Max(longRate * tl, atShort); // never fewer distinct pages in a longer window
        if (t <= ts) return atShort * t / ts;
        if (t <= tl) return atShort + (atLong - atShort) * (t - ts) / (tl - ts);
        return Math.Max(atLong, longRate * t);
    }

    /// <summary>The mean distinct dirty rate over a window of <paramref name="window"/>, bytes per second (the long rate for an empty window).</summary>
    public double RateWithin(TimeSpan window) => window > TimeSpan.Zero ? BytesWithin(window) / window.TotalSeconds : Math.Max(0, LongBytesPerSecond);
}
