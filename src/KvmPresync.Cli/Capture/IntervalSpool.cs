namespace KvmPresync.Cli.Capture;

/// <summary>
/// The captured intervals until the page count is known: a temporary file (deleted on close) of records
/// {timestamp ticks, count, first index, deltas} as LEB128 varints, read back once to write the trace.
/// </summary>
internal sealed class IntervalSpool : IDisposable
{
    private readonly FileStream _file;
    private readonly BinaryWriter _writer;

    public IntervalSpool()
    {
        string path = Path.Combine(Path.GetTempPath(), $"kvmpresync-capture-{Environment.ProcessId}-{Guid.NewGuid():N}.spool");
        _file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
        _writer = new BinaryWriter(_file, System.Text.Encoding.UTF8, leaveOpen: true);
    }

    public long Intervals { get; private set; }

    /// <summary>Appends one interval: its time and its compact page indexes (ascending).</summary>
    public void Add(TimeSpan time, long[] pages)
    {
        _writer.Write7BitEncodedInt64(time.Ticks);
        _writer.Write7BitEncodedInt64(pages.Length);
        long previous = 0;
        foreach (long p in pages)
        {
            _writer.Write7BitEncodedInt64(p - previous);
            previous = p;
        }
        Intervals++;
    }

    /// <summary>Reads every interval back, in order.</summary>
    public IEnumerable<(TimeSpan Time, long[] Pages)> ReadAll()
    {
        _writer.Flush();
        _file.Position = 0;
        using var reader = new BinaryReader(_file, System.Text.Encoding.UTF8, leaveOpen: true);
        for (long i = 0; i < Intervals; i++)
        {
            var time = TimeSpan.FromTicks(reader.Read7BitEncodedInt64());
            var pages = new long[reader.Read7BitEncodedInt64()];
            long previous = 0;
            for (int k = 0; k < pages.Length; k++) pages[k] = previous += reader.Read7BitEncodedInt64();
            yield return (time, pages);
        }
    }

    public void Dispose()
    {
        _writer.Dispose();
        _file.Dispose();
    }
}
