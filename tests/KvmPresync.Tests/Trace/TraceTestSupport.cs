using KvmPresync.Memory;
using KvmPresync.Trace;

namespace KvmPresync.Tests.Trace;

internal static class TraceTestSupport
{
    public static TraceHeader Header(long pageCount, string workload = "test") => new()
    {
        PageSize = 4096,
        PageCount = pageCount,
        Interval = TimeSpan.FromMilliseconds(50),
        Workload = workload,
        Metadata = new Dictionary<string, string> { ["recorder"] = "unit-test", ["guest"] = "ünïcödé ✓" },
    };

    /// <summary>Writes the bitmaps as consecutive intervals (timestamps 50 ms apart) and completes the trace.</summary>
    public static byte[] Write(TraceHeader header, IReadOnlyList<DirtyBitmap> intervals, bool complete = true)
    {
        var stream = new MemoryStream();
        using (var writer = new TraceWriter(stream, header, leaveOpen: true))
        {
            for (int i = 0; i < intervals.Count; i++)
                writer.WriteInterval(TimeSpan.FromMilliseconds(50 * (i + 1)), intervals[i], progress: (ulong)(i * 10));
            if (complete) writer.Complete();
        }
        return stream.ToArray();
    }

    /// <summary>Reads every interval; returns the bitmaps.</summary>
    public static List<DirtyBitmap> ReadAll(byte[] file, string name = "t.kpt", bool allowMissingEnd = false)
    {
        using var reader = new TraceReader(new MemoryStream(file), name, allowMissingEnd: allowMissingEnd);
        var result = new List<DirtyBitmap>();
        while (true)
        {
            var b = new DirtyBitmap(reader.Header.PageCount);
            if (!reader.TryReadInterval(b, out _)) break;
            result.Add(b);
        }
        return result;
    }

    public static DirtyBitmap Random(long pageCount, double density, int seed)
    {
        var rng = new Random(seed);
        var b = new DirtyBitmap(pageCount);
        for (long p = 0; p < pageCount; p++)
            if (rng.NextDouble() < density) b.Set(p);
        return b;
    }

    public static DirtyBitmap Pages(long pageCount, params long[] pages)
    {
        var b = new DirtyBitmap(pageCount);
        foreach (long p in pages) b.Set(p);
        return b;
    }
}
