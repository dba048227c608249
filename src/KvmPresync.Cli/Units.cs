using System.Globalization;
using System.Text.RegularExpressions;

namespace KvmPresync.Cli;

/// <summary>Parses the sizes and durations users type: "256M", "4GiB", "100ms", "2s".</summary>
internal static partial class Units
{
    /// <summary><see cref="ParseSize(string)"/> of an option's value; a bad value's message starts with the option's name.</summary>
    public static long ParseSize(string text, string option) => Named(option, () => ParseSize(text));

    /// <summary><see cref="ParseDuration(string)"/> of an option's value; a bad value's message starts with the option's name.</summary>
    public static TimeSpan ParseDuration(string text, string option) => Named(option, () => ParseDuration(text));

    /// <summary><see cref="ParseDuration(string, string)"/> that must be above zero (a timeout, a target); <paramref name="example"/> goes in the error.</summary>
    public static TimeSpan ParsePositiveDuration(string text, string option, string example = "10s")
    {
        TimeSpan d = ParseDuration(text, option);
        return d > TimeSpan.Zero ? d : throw new ArgumentException($"{option}: '{text}' must be a positive duration, e.g. {example}");
    }

    private static T Named<T>(string option, Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (FormatException e)
        {
            throw new FormatException($"{option}: {e.Message}", e);
        }
    }

    public static long ParseSize(string text)
    {
        Match m = SizeRegex().Match(text.Trim());
        if (!m.Success)
            throw new FormatException($"'{text}' is not a size; use bytes or a suffix K, M, G (powers of 1024), e.g. 256M");
        long n = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        int shift = char.ToUpperInvariant(m.Groups[2].Value.FirstOrDefault()) switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, _ => 0 };
        if (n > (long.MaxValue >> shift)) throw new FormatException($"size '{text}' is too large");
        return n << shift;
    }

    public static TimeSpan ParseDuration(string text)
    {
        Match m = DurationRegex().Match(text.Trim());
        if (!m.Success)
            throw new FormatException($"'{text}' is not a duration; use e.g. 100ms, 2s, 1.5s, 1m");
        double v = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        return m.Groups[2].Value.ToLowerInvariant() switch
        {
            "us" => TimeSpan.FromMicroseconds(v),
            "ms" => TimeSpan.FromMilliseconds(v),
            "" or "s" => TimeSpan.FromSeconds(v),
            "m" or "min" => TimeSpan.FromMinutes(v),
            _ => throw new FormatException($"unknown duration unit in '{text}'"),
        };
    }

    public static string FormatBytes(double bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (1L << 30):0.00} GiB",
        >= 1L << 20 => $"{bytes / (1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / (1L << 10):0.0} KiB",
        _ => $"{bytes:0} B",
    };

    [GeneratedRegex(@"^(\d+)\s*([KkMmGgTt](i?[Bb])?|[Bb])?$")]
    private static partial Regex SizeRegex();

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)\s*(us|ms|s|m|min)?$", RegexOptions.IgnoreCase)]
    private static partial Regex DurationRegex();
}
