using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Engine;

namespace KvmPresync.Trace;

/// <summary>
/// Replays a recorded trace as an <see cref="IReplayDirtyPageSource"/>: a harvest at clock t ORs in every recorded
/// interval whose timestamp is ≤ t and was not harvested before. Streams the file (two bitmaps of memory).
/// </summary>
public sealed class TraceReplaySource : IReplayDirtyPageSource, IDisposable
{
    private readonly TraceReader _reader;
    private readonly DirtyBitmap _lookahead;
    private readonly DirtyBitmap _harvest;
    private TraceInterval _next;
    private bool _hasNext;

    public TraceReplaySource(TraceReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        _reader = reader;
        _lookahead = new DirtyBitmap(reader.Header.PageCount);
        _harvest = new DirtyBitmap(reader.Header.PageCount);
        ReadAhead();
    }

    public static TraceReplaySource Open(string path, bool allowMissingEnd = false) => new(TraceReader.Open(path, allowMissingEnd));

    public TraceHeader Header => _reader.Header;

    public string Workload => _reader.Header.Workload;

    public long PageCount => _reader.Header.PageCount;

    public int PageSize => _reader.Header.PageSize;

    public TimeSpan Interval => _reader.Header.Interval;

    public TimeSpan Now { get; private set; }

    public bool Exhausted => !_hasNext;

    public void AdvanceTo(TimeSpan time)
    {
        if (time < Now) throw new ArgumentOutOfRangeException(nameof(time), time, $"the replay clock cannot go backwards (now {Now})");
        Now = time;
    }

    public DirtyHarvest Harvest(DirtyBitmap into)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (into.PageCount != PageCount)
            throw new ArgumentException($"bitmap covers {into.PageCount} pages, trace {_reader.Name} covers {PageCount}", nameof(into));
        _harvest.Clear();
        ulong progress = 0;
        bool any = false;
        while (_hasNext && _next.Timestamp <= Now)
        {
            _harvest.Or(_lookahead);
            progress += _next.Progress;
            any = true;
            ReadAhead();
        }
        long pages = any ? _harvest.Count() : 0;
        if (any) into.Or(_harvest);
        return new DirtyHarvest(Now, pages, progress);
    }

    public void Dispose() => _reader.Dispose();

    private void ReadAhead()
    {
        _lookahead.Clear();
        _hasNext = _reader.TryReadInterval(_lookahead, out _next);
    }
}
