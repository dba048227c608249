using System.Globalization;
using System.Text;
using KvmPresync.Memory;
using KvmPresync.ProcessMemory.Capture;
using KvmPresync.Trace;

namespace KvmPresync.Cli.Capture;

/// <summary>
/// Writes a capture as a trace once its page count is known (docs/TRACE_FORMAT.md, "Captured traces"): the header with
/// the capture's metadata (kept under the header limit: long lists capped, the resident series downsampled), then the
/// spooled intervals.
/// </summary>
internal static class CapturedTrace
{
    private const int MaxListBytes = 8 * 1024;   // processes, regions
    private const int MaxSeriesBytes = 24 * 1024; // resident-kib-per-s

    public sealed record Summary(IReadOnlyList<string> Command, TimeSpan Interval, string Workload, string End,
        IReadOnlyList<long> ResidentKibPerSecond, IReadOnlyList<string> TrackerErrors);

    /// <summary>Writes the trace; returns (intervals, page count).</summary>
    public static (long Intervals, long Pages) Write(string path, ProcessTreeCapture capture, IntervalSpool spool, Summary s)
    {
        long pageCount = Math.Max(1, capture.Space.PageCount); // a trace has at least one page
        var header = new TraceHeader
        {
            PageSize = Environment.SystemPageSize,
            PageCount = pageCount,
            Interval = s.Interval,
            Workload = s.Workload,
            Metadata = Metadata(capture, s),
        };
        using var writer = TraceWriter.Create(path, header);
        var bitmap = new DirtyBitmap(pageCount);
        foreach ((TimeSpan time, long[] pages) in spool.ReadAll())
        {
            bitmap.Clear();
            foreach (long p in pages) bitmap.Set(p);
            writer.WriteInterval(time, bitmap);
        }
        writer.Complete();
        return (writer.IntervalsWritten, pageCount);
    }

    internal static Dictionary<string, string> Metadata(ProcessTreeCapture capture, Summary s)
    {
        var c = CultureInfo.InvariantCulture;
        var meta = new Dictionary<string, string>
        {
            ["source"] = "capture",
            ["recorder"] = "kvmpresync trace capture (userfaultfd async write protection + PAGEMAP_SCAN)",
            ["command"] = Cap(string.Join(' ', s.Command.Select(Quote)), 4096),
            ["interval"] = $"{s.Interval.TotalMilliseconds.ToString(c)}ms",
            ["page-space"] = "first-write",
            ["end"] = s.End,
            ["processes"] = capture.Processes.Count.ToString(c),
            ["processes-seen"] = CapList(capture.Processes.Select(p => $"{p.Pid} {p.Name}{(p.Untracked ? " (untracked)" : "")}"), ", "),
            ["regions"] = CapList(capture.Space.Regions().Select(r => $"{r.Pages} {r.Region.Replace(';', ',')}"), "; "),
        };
        var untracked = capture.Processes.Where(p => p.Untracked).ToList();
        if (untracked.Count > 0)
            meta["untracked-processes"] = CapList(untracked.Select(p => $"{p.Pid} {p.Name}"), ", ");
        if (s.TrackerErrors.Count > 0)
            meta["tracker-errors"] = CapList(s.TrackerErrors, " | ");
        (IReadOnlyList<long> series, int step) = Downsample(s.ResidentKibPerSecond, MaxSeriesBytes);
        meta[step == 1 ? "resident-kib-per-s" : $"resident-kib-per-{step}s"] = string.Join(',', series.Select(v => v.ToString(c)));
        return meta;
    }

    /// <summary>Averages adjacent samples (doubling the step) until the comma-separated series fits <paramref name="maxBytes"/>.</summary>
    internal static (IReadOnlyList<long> Series, int Step) Downsample(IReadOnlyList<long> values, int maxBytes)
    {
        IReadOnlyList<long> v = values;
        int step = 1;
        while (v.Sum(x => x.ToString(CultureInfo.InvariantCulture).Length + 1) > maxBytes)
        {
            v = v.Chunk(2).Select(pair => (long)pair.Average()).ToList();
            step *= 2;
        }
        return (v, step);
    }

    private static string CapList(IEnumerable<string> items, string separator)
    {
        var sb = new StringBuilder();
        int n = 0, left = 0, bytes = 0;
        foreach (string item in items)
        {
            int size = Encoding.UTF8.GetByteCount(item) + separator.Length;
            if (bytes + size > MaxListBytes - 32) { left++; continue; }
            if (n++ > 0) sb.Append(separator);
            sb.Append(item);
            bytes += size;
        }
        if (left > 0) sb.Append(separator).Append(CultureInfo.InvariantCulture, $"… {left} more");
        return sb.ToString();
    }

    private static string Cap(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";

    private static string Quote(string arg) => arg.Length > 0 && arg.All(ch => char.IsAsciiLetterOrDigit(ch) || "-_./=:,+@%".Contains(ch)) ? arg : $"'{arg.Replace("'", "'\\''")}'";
}
