using System.Globalization;
using KvmPresync.Engine;

namespace KvmPresync.Trace;

/// <summary>
/// Whether the guest writes faster than the link moves pages, measured on the <c>none</c> run's measured period. Then
/// <c>none</c> is capped by the link and its pending set grows, so "none minus policy" measures the link, not the
/// policy: a comparison reports no reduction for that trace.
/// </summary>
/// <remarks>
/// writes = Σ over the measured rounds (t ≥ warm-up) of the pages each round harvested × (page size + header) — what
/// <c>none</c> must send to keep up, rewrites within a round already coalesced; seconds = Σ of those rounds' intervals
/// (each harvest covers the interval before it). Saturated ⇔ writes / seconds &gt; link bits per second / 8.
/// </remarks>
public sealed record LinkSaturation
{
    /// <summary>Wire bytes per second the guest's writes need under <c>none</c> (harvested pages × full page cost).</summary>
    public required double WritesBytesPerSecond { get; init; }

    public required double LinkBytesPerSecond { get; init; }

    /// <summary>Length of the measured period the writes were summed over.</summary>
    public required double MeasuredSeconds { get; init; }

    public bool Saturated => WritesBytesPerSecond > LinkBytesPerSecond;

    /// <summary>"link saturated: writes 140 MB/s &gt; link 125 MB/s — reduction not meaningful" (MB = 10⁶ bytes), or the
    /// unsaturated figures.</summary>
    public string Describe() => Saturated
        ? $"link saturated: writes {Mb(WritesBytesPerSecond)} MB/s > link {Mb(LinkBytesPerSecond)} MB/s — reduction not meaningful"
        : $"writes {Mb(WritesBytesPerSecond)} MB/s ≤ link {Mb(LinkBytesPerSecond)} MB/s";

    /// <summary>Measures <paramref name="none"/> (a <c>none</c> run) with <paramref name="headerBytesPerPage"/> per page.</summary>
    public static LinkSaturation Measure(SimulationResult none, int headerBytesPerPage)
    {
        ArgumentNullException.ThrowIfNull(none);
        ArgumentOutOfRangeException.ThrowIfNegative(headerBytesPerPage);
        if (none.Policy != SyncPolicy.None.Name())
            throw new ArgumentException($"saturation is measured on the none run, not {none.Policy}", nameof(none));
        long pages = 0;
        double ms = 0;
        foreach (RoundRecord r in none.Rounds)
        {
            if (r.Phase != RoundPhase.Sync || r.TimeMs < none.MeasuredFromMs) continue;
            pages += r.DirtyPages;
            ms += r.IntervalMs;
        }
        double seconds = ms / 1000;
        return new LinkSaturation
        {
            WritesBytesPerSecond = seconds > 0 ? pages * (double)(none.PageSize + headerBytesPerPage) / seconds : 0,
            LinkBytesPerSecond = none.LinkBitsPerSecond / 8,
            MeasuredSeconds = seconds,
        };
    }

    private static string Mb(double bytesPerSecond) =>
        (bytesPerSecond / 1e6).ToString(bytesPerSecond >= 100e6 ? "0" : bytesPerSecond >= 10e6 ? "0.#" : "0.00", CultureInfo.InvariantCulture);
}
