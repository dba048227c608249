using KvmPresync.Memory;
using KvmPresync.Trace;
using KvmPresync.Vmm.Replay;

namespace KvmPresync.Cli.Replay;

/// <summary>
/// A recorded dirty trace as a replay guest's batches: each interval's pages, in runs, at most a mailbox's worth per batch,
/// due at the interval's start (the previous interval's timestamp; 0 for the first), so that a harvest at the recorded
/// timestamp sees them. Every interval yields at least one batch (an empty one for an empty interval). At the end of the
/// file the trace starts over, shifted by its last timestamp (with <c>loop</c>), or the feed ends. Streams the file: one
/// interval's bitmap in memory.
/// </summary>
internal sealed class TraceReplayFeed : IReplayFeed, IDisposable
{
    private readonly string _path;
    private readonly bool _loop;
    private readonly DirtyBitmap _pages;
    private TraceReader? _reader;
    private long _cursor, _interval = -1, _passIntervals; // _cursor: next page of the loaded interval (PageCount: none left)
    private TimeSpan _passOffset, _previousTimestamp, _start;
    private uint _progress;

    private TraceReplayFeed(string path, TraceReader reader, bool loop)
    {
        _path = path;
        _loop = loop;
        _reader = reader;
        TraceHeader h = reader.Header;
        Name = string.IsNullOrWhiteSpace(h.Workload) ? Path.GetFileNameWithoutExtension(path) : h.Workload;
        PageCount = h.PageCount;
        _pages = new DirtyBitmap(h.PageCount);
        _cursor = h.PageCount;
    }

    /// <summary>Opens <paramref name="path"/> (its header is validated now; a corrupt interval fails when it is reached).</summary>
    public static TraceReplayFeed Open(string path, bool loop = true) => new(path, OpenReader(path), loop);

    /// <summary>The pages <paramref name="path"/> covers, from its header (validated as <see cref="Open"/> does; no interval is read).</summary>
    public static long PagesOf(string path)
    {
        using TraceReader reader = OpenReader(path);
        return reader.Header.PageCount;
    }

    private static TraceReader OpenReader(string path)
    {
        TraceReader reader = TraceReader.Open(path);
        if (reader.Header.PageSize != 4096)
        {
            reader.Dispose();
            throw new ArgumentException($"trace {path}: its pages are {reader.Header.PageSize} bytes; a replay guest writes 4096-byte pages");
        }
        return reader;
    }

    /// <summary>The trace file.</summary>
    public string FilePath => _path;

    /// <summary>The trace's workload name (its header), or the file's stem when the header has none.</summary>
    public string Name { get; }

    public long PageCount { get; }

    /// <summary>Times the trace has started over.</summary>
    public int Loops { get; private set; }

    public ReplayBatch? Next(Span<ReplayRun> runs)
    {
        if (_cursor >= PageCount && !ReadInterval()) return null;
        int n = 0;
        long pages = 0;
        while (n < runs.Length)
        {
            long first = _pages.NextRun(_cursor, out long end);
            _cursor = end;
            if (first >= PageCount) break;
            runs[n++] = new ReplayRun((uint)first, (uint)(end - first));
            pages += end - first;
        }
        uint progress = _progress; // the interval's first batch carries its progress
        _progress = 0;
        return new ReplayBatch(_interval, _start, n, pages, progress);
    }

    /// <summary>Loads the next interval (starting the trace over at its end when looping); false when the trace is over.</summary>
    private bool ReadInterval()
    {
        while (true)
        {
            if (_reader is null) return false;
            _pages.Clear();
            if (_reader.TryReadInterval(_pages, out TraceInterval iv))
            {
                _passIntervals++;
                _interval++;
                _start = _passOffset + _previousTimestamp;
                _previousTimestamp = iv.Timestamp;
                _progress = (uint)Math.Min(iv.Progress, uint.MaxValue);
                _cursor = 0;
                return true;
            }
            _reader.Dispose();
            _reader = null;
            if (!_loop || _passIntervals == 0 || _previousTimestamp <= TimeSpan.Zero) return false;
            _passOffset += _previousTimestamp;
            _previousTimestamp = TimeSpan.Zero;
            _passIntervals = 0;
            _reader = TraceReader.Open(_path);
            Loops++;
        }
    }

    public void Dispose()
    {
        _reader?.Dispose();
        _reader = null;
    }
}
