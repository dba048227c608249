namespace KvmPresync.Cli.Repro;

/// <summary>Order statistics of repro's per-run figures.</summary>
internal static class ReproStats
{
    /// <summary>The <paramref name="q"/> quantile by linear interpolation between order statistics; NaN for no values.</summary>
    public static double Percentile(IEnumerable<double> values, double q)
    {
        double[] v = values.OrderBy(x => x).ToArray();
        if (v.Length == 0) return double.NaN;
        double pos = q * (v.Length - 1);
        int lo = (int)Math.Floor(pos), hi = (int)Math.Ceiling(pos);
        return v[lo] + (v[hi] - v[lo]) * (pos - lo);
    }

    /// <summary>The median (the mean of the middle two for an even count); NaN for no values.</summary>
    public static double Median(IEnumerable<double> values) => Percentile(values, 0.5);
}
