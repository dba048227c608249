using System.Globalization;
using KvmPresync.Core;
using KvmPresync.Migration;

namespace KvmPresync.Cli.Commands;

/// <summary>
/// <c>run --presync-to</c>'s guest-slowdown figure: the baseline window before connecting (<see cref="MeasureBaselineAsync"/>)
/// and the lines printed after the migration (<see cref="Of"/>).
/// </summary>
internal static class SlowdownLines
{
    /// <summary>Lets the guest run <paramref name="length"/> with nothing sent and no connection yet, and measures its work.</summary>
    public static async Task<GuestWindow> MeasureBaselineAsync(IMigrationSource source, TimeSpan length, CancellationToken ct)
    {
        Console.WriteLine($"measuring the guest's work rate for {length.TotalSeconds:0.#} s before presync (nothing sent: the slowdown baseline)");
        GuestWindow w = await GuestWindow.MeasureAsync(source, length, ct);
        Console.WriteLine($"baseline: {Rate(w)}{Vcpu(w)}");
        return w;
    }

    /// <summary>
    /// The slowdown line (and the vCPU figures behind it) for a finished migration; none without a baseline.
    /// <paramref name="presync"/> false (classic pre-copy): nothing was sent before launch, so the figure is a null test.
    /// </summary>
    public static IEnumerable<string> Of(MigrationResult result, bool presync)
    {
        if (result.GuestSlowdown is not { } s) yield break;
        string what = presync ? "guest slowdown during presync" : "guest slowdown before launch (classic pre-copy, nothing sent: a control)";
        yield return s.Percent is { } p
            ? $"{what}: {F(p)} % (±{F(s.CountingUncertaintyPercent ?? 0)} from whole units): {Rate(s.Presync)} against {Rate(s.Baseline)} before presync"
            : $"{what}: n/a — the guest did no work in the {s.Baseline.Seconds:0.#} s baseline ({Rate(s.Presync)} during presync)";
        if (s.Baseline.Run is not null && s.Presync.Run is not null)
            yield return $"guest vCPU: before presync{Vcpu(s.Baseline)}; during presync{Vcpu(s.Presync)}";
    }

    /// <summary>A window's rate and vCPU figures, as one line.</summary>
    public static string Describe(GuestWindow w) => Rate(w) + Vcpu(w);

    private static string Rate(GuestWindow w) =>
        $"{w.Rate.ToString("0.###", CultureInfo.InvariantCulture)} units/s ({w.Units} in {w.Seconds.ToString("0.0", CultureInfo.InvariantCulture)} s)";

    private static string Vcpu(GuestWindow w) => w.Run is null ? ""
        : $"; vCPU busy {F(w.BusyPercent ?? 0)} %, on a CPU {F(w.OnCpuPercent ?? 0)} % ({(w.OnCpuUsPerUnit is { } u ? u.ToString("0.0", CultureInfo.InvariantCulture) : "-")} µs per unit), " +
          $"waiting for a CPU {(w.RunQueueWaitMsPerSecond ?? 0).ToString("0.0", CultureInfo.InvariantCulture)} ms/s";

    private static string F(double v) => v.ToString("0.00", CultureInfo.InvariantCulture);
}
