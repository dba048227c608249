using System.Globalization;
using KvmPresync.Trace;

namespace KvmPresync.Cli.Commands;

/// <summary>
/// Prints one <see cref="PolicyComparisonResult"/> as <c>simulate</c>'s table: a title line, the saturation line, a header,
/// then one row per policy with columns separated by at least two spaces (bytes in exact decimal with thousands
/// separators; "–" where a reduction is not meaningful). <c>repro</c>'s oracle block shares all but the title
/// (<see cref="WriteRows"/>).
/// </summary>
internal static class ComparisonTable
{
    public const string NotMeaningful = "–";

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static void Write(TextWriter output, PolicyComparisonResult c)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(c);
        SimulationResult first = c.Outcomes[0].Result;
        string measured = c.DurationMs is { } d ? $"{d / 1000:0.###} s" : "to the end";
        output.WriteLine($"{c.Source}: workload {c.Workload}, {Units.FormatBytes(first.PageCount * (double)first.PageSize)}, link {c.LinkBitsPerSecond / 1e6:0.###} Mbit/s, " +
                         $"warm-up {c.WarmUpMs / 1000:0.###} s, measured {measured}, launch budget {first.LaunchBudgetBytes.ToString("N0", Invariant)} B");
        WriteRows(output, "", c, megabytes: false);
    }

    /// <summary>
    /// Everything under a title line: the saturation line, the header, then a row per policy, each line prefixed with
    /// <paramref name="indent"/> plus two spaces. Bytes in exact decimal with thousands separators and the launch
    /// budget verdict, or with <paramref name="megabytes"/> in MB (10⁶ B, two decimals) without the verdict.
    /// </summary>
    public static void WriteRows(TextWriter output, string indent, PolicyComparisonResult c, bool megabytes)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(c);
        output.WriteLine($"{indent}  {c.Saturation.Describe()}");
        if (megabytes)
        {
            output.WriteLine($"{indent}  {"policy",-18}  {"sync MB",10}  {"launch MB",9}  {"reduction",9}  {"of oracle",9}");
            foreach (PolicyOutcome o in c.Outcomes)
                output.WriteLine($"{indent}  {o.Policy,-18}  {o.SyncBytes / 1e6,10:0.00}  {o.LaunchBytes / 1e6,9:0.00}  {Percent(o.ReductionPercent),9}  {Percent(o.OracleFractionPercent),9}");
            return;
        }
        output.WriteLine($"{indent}  {"policy",-18}  {"sync bytes",15}  {"launch bytes",13}  {"launch",-13}  {"reduction",9}  {"of oracle",9}");
        foreach (PolicyOutcome o in c.Outcomes)
        {
            output.WriteLine($"{indent}  {o.Policy,-18}  {o.SyncBytes.ToString("N0", Invariant),15}  {o.LaunchBytes.ToString("N0", Invariant),13}  " +
                             $"{(o.LaunchWithinBudget ? "within budget" : "OVER budget"),-13}  {Percent(o.ReductionPercent),9}  {Percent(o.OracleFractionPercent),9}");
        }
    }

    private static string Percent(double? value) => value is { } v ? v.ToString("0.0", Invariant) + " %" : NotMeaningful;
}
