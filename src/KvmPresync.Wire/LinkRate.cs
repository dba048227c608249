using System.Globalization;

namespace KvmPresync.Wire;

/// <summary>
/// Parses link rates into bits per second. Bit rates: <c>bit, kbit, mbit, gbit, tbit</c> (powers of 1000) and
/// <c>kibit, mibit, gibit</c> (powers of 1024). Byte rates end in <c>/s</c>: <c>B/s, kB/s, MB/s, GB/s</c>
/// (1000) and <c>KiB/s, MiB/s, GiB/s</c> (1024), ×8. Case-insensitive; decimals allowed ("1.5gbit").
/// <c>bps</c>-style units are refused: tc reads "mbps" as megaBYTES per second, most people do not.
/// </summary>
public static class LinkRate
{
    private static readonly (string Unit, decimal BitsPer)[] Units =
    [
        ("bit", 1m), ("kbit", 1e3m), ("mbit", 1e6m), ("gbit", 1e9m), ("tbit", 1e12m),
        ("kibit", 1024m), ("mibit", 1024m * 1024), ("gibit", 1024m * 1024 * 1024),
        ("b/s", 8m), ("kb/s", 8e3m), ("mb/s", 8e6m), ("gb/s", 8e9m),
        ("kib/s", 8m * 1024), ("mib/s", 8m * 1024 * 1024), ("gib/s", 8m * 1024 * 1024 * 1024),
    ];

    /// <summary>Bits per second for <paramref name="text"/>, or <see cref="FormatException"/> saying what is wrong.</summary>
    public static long Parse(string text)
    {
        if (!TryParse(text, out long bits, out string? error)) throw new FormatException(error);
        return bits;
    }

    public static bool TryParse(string? text, out long bitsPerSecond, out string? error)
    {
        bitsPerSecond = 0;
        string s = (text ?? "").Trim();
        const string Examples = "e.g. 1gbit, 100mbit, 500kbit, 10MB/s";
        if (s.Length == 0)
        {
            error = $"empty link rate; write a number and a unit, {Examples}";
            return false;
        }
        int split = 0;
        while (split < s.Length && (char.IsAsciiDigit(s[split]) || s[split] == '.')) split++;
        string number = s[..split], unit = s[split..].Trim().ToLowerInvariant();
        if (number.Length == 0 || !decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal value))
        {
            error = $"link rate '{s}' does not start with a number ({Examples})";
            return false;
        }
        if (unit.Length == 0)
        {
            error = $"link rate '{s}' has no unit; write bits ('{number}mbit') or bytes per second ('{number}MB/s')";
            return false;
        }
        if (unit.EndsWith("bps", StringComparison.Ordinal))
        {
            error = $"link rate unit '{unit}' is ambiguous (tc reads 'mbps' as megabytes/s); write '{number}mbit' for bits or '{number}MB/s' for bytes";
            return false;
        }
        decimal? factor = null;
        foreach ((string u, decimal bitsPer) in Units)
            if (u == unit) factor = bitsPer;
        if (factor is null)
        {
            error = $"link rate unit '{unit}' is unknown; use bit, kbit, mbit, gbit, tbit, kibit, mibit, gibit or B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s";
            return false;
        }
        decimal bits;
        try
        {
            bits = decimal.Round(value * factor.Value, MidpointRounding.AwayFromZero);
        }
        catch (OverflowException)
        {
            bits = decimal.MaxValue;
        }
        if (bits < 1 || bits > long.MaxValue)
        {
            error = $"link rate '{s}' is {(bits < 1 ? "below 1 bit/s" : "too large")}";
            return false;
        }
        bitsPerSecond = (long)bits;
        error = null;
        return true;
    }

    /// <summary>A readable rate, e.g. "1 Gbit/s", "12.5 Mbit/s".</summary>
    public static string Format(long bitsPerSecond) => bitsPerSecond switch
    {
        >= 1_000_000_000 => $"{bitsPerSecond / 1e9:0.###} Gbit/s",
        >= 1_000_000 => $"{bitsPerSecond / 1e6:0.###} Mbit/s",
        >= 1_000 => $"{bitsPerSecond / 1e3:0.###} kbit/s",
        _ => $"{bitsPerSecond} bit/s",
    };
}
