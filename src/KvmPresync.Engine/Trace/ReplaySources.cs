using KvmPresync.Core;
using KvmPresync.Memory;

namespace KvmPresync.Trace;

/// <summary>Helpers over <see cref="IReplayDirtyPageSource"/>.</summary>
public static class ReplaySources
{
    /// <summary>
    /// Records <paramref name="source"/> into <paramref name="writer"/>, one trace interval per source interval, until
    /// the source is exhausted or <paramref name="duration"/> has passed; then completes the trace.
    /// Returns the number of intervals written. (E.g. to store a synthetic workload as a trace file.)
    /// </summary>
    public static long WriteTo(this IReplayDirtyPageSource source, TraceWriter writer, TimeSpan? duration = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(writer);
        if (writer.Header.PageCount != source.PageCount)
            throw new ArgumentException($"trace covers {writer.Header.PageCount} pages, source {source.PageCount}", nameof(writer));
        var bitmap = new DirtyBitmap(source.PageCount);
        long written = 0;
        TimeSpan t = source.Now;
        while (!source.Exhausted)
        {
            t += source.Interval;
            if (duration is { } d && t > d) break;
            source.AdvanceTo(t);
            bitmap.Clear();
            var harvest = source.Harvest(bitmap);
            writer.WriteInterval(harvest.Time, bitmap, harvest.Progress);
            written++;
        }
        writer.Complete();
        return written;
    }

    /// <summary>A trace header describing <paramref name="source"/> with optional metadata.</summary>
    public static TraceHeader HeaderFor(IReplayDirtyPageSource source, IReadOnlyDictionary<string, string>? metadata = null) => new()
    {
        PageSize = source.PageSize,
        PageCount = source.PageCount,
        Interval = source.Interval,
        Workload = source.Workload,
        Metadata = metadata ?? new Dictionary<string, string>(),
    };
}
