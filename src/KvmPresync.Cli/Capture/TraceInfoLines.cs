using System.Globalization;

namespace KvmPresync.Cli.Capture;

/// <summary>How <c>trace info</c> shows a metadata pair: most as "key: value"; a captured trace's lists one item a line and its resident series summarized.</summary>
internal static class TraceInfoLines
{
    public static string Format(string key, string value)
    {
        if (key == "regions")
            return "  regions (distinct pages written, by mapping):" + string.Concat(value.Split("; ").Select(r => "\n    " + r));
        if (key.StartsWith("resident-kib-per-", StringComparison.Ordinal))
        {
            long[] v = value.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            string step = key["resident-kib-per-".Length..];
            return v.Length == 0 ? $"  resident: no samples"
                : $"  resident (Rss of the tracked processes, one sample per {step}): {v.Length} samples, first {v[0]} KiB, peak {v.Max()} KiB, last {v[^1]} KiB";
        }
        return $"  {key}: {value}";
    }
}
