namespace KvmPresync.Engine;

/// <summary>
/// How many distinct bytes a guest dirties within a window of a given length: its working-set curve, from up to three
/// measured points. <see cref="LongWindow"/> is the sync round (the harvest interval) and <see cref="LongBytesPerSecond"/> its
/// distinct dirty rate; <see cref="ShortWindow"/> is a short probe window inside a round and <see cref="ShortBytesPerSecond"/>
/// the distinct rate over it; <see cref="SetWindow"/> is a stretch of many rounds and <see cref="SetBytes"/> the distinct
/// bytes dirtied over it (the predictor's active pages). A guest that rewrites the same pages many times a round (a frame
/// buffer every 40 ms) dirties far more than <c>LongBytesPerSecond × t</c> in a window much shorter than a round: the live
/// rounds after a launch are such windows. A guest that rewrites the same pages round after round (a cache's items) dirties
/// far fewer than that in a window of many rounds: a launch whose first live round lasts most of a second, because the link
/// cannot keep up with the guest, is such a window. The curve is linear through the origin up to the short window, linear
/// between the points, and beyond the last one it goes on with the slope of the segment before it (the long rate without a
/// set point). Without a short point it is the long rate up to the round.
/// </summary>
public readonly record struct DirtyWorkingSet(double LongBytesPerSecond, TimeSpan LongWindow, double ShortBytesPerSecond = 0, TimeSpan ShortWindow = default,
    double SetBytes = 0, TimeSpan SetWindow = default)
{
    /// <summary>A guest dirtying at one rate at every time scale.</summary>
    public static DirtyWorkingSet Steady(double bytesPerSecond) => new(bytesPerSecond, TimeSpan.Zero);

    /// <summary>The curve has a measured short point.</summary>
    public bool HasShortWindow => ShortWindow > TimeSpan.Zero && LongWindow > ShortWindow && ShortBytesPerSecond > 0;

    /// <summary>The curve has a measured point over many rounds.</summary>
    public bool HasSetPoint => SetWindow > LongWindow && LongWindow > TimeSpan.Zero && SetBytes > 0;

    /// <summary>Expected distinct bytes dirtied within a window of length <paramref name="window"/>.</summary>
    public double BytesWithin(TimeSpan window)
    {
        double t = window.TotalSeconds;
        if (!(t > 0)) return 0;
        double longRate = Math.Max(0, LongBytesPerSecond);
        double tl = LongWindow.TotalSeconds;
        double atLong = longRate * tl;
        if (HasShortWindow)
        {
            double ts = ShortWindow.TotalSeconds;
            double atShort = ShortBytesPerSecond * ts;
            atLong = Math.Max(atLong, atShort); // never fewer distinct pages in a longer window
            if (t <= ts) return atShort * t / ts;
            if (t <= tl) return atShort + (atLong - atShort) * (t - ts) / (tl - ts);
        }
        else if (t <= tl) return longRate * t;
        if (!HasSetPoint) return Math.Max(atLong, longRate * t);
        double atSet = Math.Max(SetBytes, atLong);
        return atLong + (atSet - atLong) * (t - tl) / (SetWindow.TotalSeconds - tl);
    }

    /// <summary>The mean distinct dirty rate over a window of <paramref name="window"/>, bytes per second (the long rate for an empty window).</summary>
    public double RateWithin(TimeSpan window) => window > TimeSpan.Zero ? BytesWithin(window) / window.TotalSeconds : Math.Max(0, LongBytesPerSecond);
}
