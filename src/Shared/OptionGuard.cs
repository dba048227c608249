using System.Globalization;
using System.Runtime.CompilerServices;

namespace KvmPresync;

/// <summary>
/// Validation of an option at construction, from its <c>init</c> accessor (docs/ARCHITECTURE.md, "API conventions"):
/// <code>public int BatchPages { get; init => field = OptionGuard.Require(value, value is >= 1 and &lt;= 4096, nameof(PresyncOptions), "must be between 1 and 4096"); } = 256;</code>
/// throws <see cref="ArgumentOutOfRangeException"/> with the option as its parameter name and a message that names it:
/// "PresyncOptions.BatchPages must be between 1 and 4096, got 0". Compiled into each library that has options
/// (Directory.Build.targets); checks across options stay in the type's <c>Validate()</c>, run by whatever uses them.
/// </summary>
internal static class OptionGuard
{
    public static T Require<T>(T value, bool valid, string owner, string requirement, [CallerMemberName] string option = "") =>
        valid ? value : throw new ArgumentOutOfRangeException(option, value, $"{owner}.{option} {requirement}, got {Show(value)}");

    public static T NotNull<T>(T? value, string owner, [CallerMemberName] string option = "") where T : class =>
        value ?? throw new ArgumentNullException(option, $"{owner}.{option} must not be null");

    public static TimeSpan Positive(TimeSpan value, string owner, [CallerMemberName] string option = "") =>
        Require(value, value > TimeSpan.Zero, owner, "must be positive", option);

    public static TimeSpan NotNegative(TimeSpan value, string owner, [CallerMemberName] string option = "") =>
        Require(value, value >= TimeSpan.Zero, owner, "must not be negative", option);

    /// <summary>In the open interval (0, 1).</summary>
    public static double Fraction(double value, string owner, [CallerMemberName] string option = "") =>
        Require(value, value > 0 && value < 1, owner, "must be in (0, 1)", option);

    /// <summary>An absolute path (null passes: "not set").</summary>
    public static string? Absolute(string? value, string owner, [CallerMemberName] string option = "") =>
        value is null || Path.IsPathRooted(value) ? value : throw new ArgumentException($"{owner}.{option} must be an absolute path, got '{value}'", option);

    public static string NotBlank(string? value, string owner, [CallerMemberName] string option = "") =>
        string.IsNullOrWhiteSpace(value) ? throw new ArgumentException($"{owner}.{option} must not be empty", option) : value;

    public static string Show<T>(T value) => value switch
    {
        null => "null",
        TimeSpan t => $"{t.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)} ms",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
