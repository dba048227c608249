using KvmPresync.Core;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;
using KvmPresync.Memory;

namespace KvmPresync.Trace;

/// <summary>
/// Streams a dirty trace: the header at construction, one record per <see cref="WriteInterval"/>, the end record at
/// <see cref="Complete"/>. Memory is constant in the trace length (one interval's encoded payload is buffered).
/// Disposing without <see cref="Complete"/> leaves the file without its end record, which readers report as an
/// interrupted recording.
/// </summary>
public sealed class TraceWriter : IDisposable
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly MemoryStream _runs = new();
    private readonly MemoryStream _deflated = new();
    private readonly byte[] _recordHeader = new byte[TraceFormat.IntervalHeaderBytes];
    private long _lastTimestampNs = -1;
    private long _totalDirty;
    private bool _completed;
    private bool _disposed;

    public TraceWriter(Stream stream, TraceHeader header, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(header);
        header.Validate();
        if (!stream.CanWrite) throw new ArgumentException("trace stream is not writable", nameof(stream));
        _stream = stream;
        _leaveOpen = leaveOpen;
        Header = header;
        WriteHeader(header);
    }

    /// <summary>Creates (or overwrites) the trace file at <paramref name="path"/>.</summary>
    public static TraceWriter Create(string path, TraceHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        header.Validate();
        var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16);
        try
        {
            return new TraceWriter(file, header);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public TraceHeader Header { get; }

    public long IntervalsWritten { get; private set; }

    /// <summary>Bytes written so far.</summary>
    public long BytesWritten { get; private set; }

    /// <summary>
    /// Appends one interval: the pages dirtied during it, the time of its end since the start of the trace
    /// (non-decreasing), and the guest work units completed during it (0 = unknown).
    /// </summary>
    public void WriteInterval(TimeSpan timestamp, DirtyBitmap dirty, ulong progress = 0)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(dirty);
        if (_completed) throw new InvalidOperationException("the trace is complete; no interval may follow its end record");
        if (dirty.PageCount != Header.PageCount)
            throw new ArgumentException($"bitmap covers {dirty.PageCount} pages, the trace {Header.PageCount}", nameof(dirty));
        if (timestamp < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timestamp), timestamp, "timestamp must not be negative");
        long ns = checked(timestamp.Ticks * 100);
        if (ns < _lastTimestampNs)
            throw new ArgumentOutOfRangeException(nameof(timestamp), timestamp, $"timestamps must not go backwards (previous {_lastTimestampNs} ns)");

        _runs.SetLength(0);
        long count = TraceFormat.EncodeRuns(dirty, _runs);
        ReadOnlySpan<byte> payload = _runs.GetBuffer().AsSpan(0, (int)_runs.Length);
        uint encoding = TraceFormat.EncodingRuns;
        if (payload.Length > 64)
        {
            _deflated.SetLength(0);
            using (var deflate = new DeflateStream(_deflated, CompressionLevel.Fastest, leaveOpen: true))
                deflate.Write(payload);
            if (_deflated.Length < payload.Length)
            {
                payload = _deflated.GetBuffer().AsSpan(0, (int)_deflated.Length);
                encoding = TraceFormat.EncodingRunsDeflate;
            }
        }

        Span<byte> h = _recordHeader;
        BinaryPrimitives.WriteUInt32LittleEndian(h, TraceFormat.IntervalTag);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], encoding);
        BinaryPrimitives.WriteInt64LittleEndian(h[8..], IntervalsWritten);
        BinaryPrimitives.WriteInt64LittleEndian(h[16..], ns);
        BinaryPrimitives.WriteUInt64LittleEndian(h[24..], progress);
        BinaryPrimitives.WriteInt64LittleEndian(h[32..], count);
        BinaryPrimitives.WriteInt32LittleEndian(h[40..], payload.Length);
        BinaryPrimitives.WriteInt32LittleEndian(h[44..], (int)_runs.Length);
        var crc = new Crc32();
        crc.Append(h[..48]);
        crc.Append(payload);
        BinaryPrimitives.WriteUInt32LittleEndian(h[48..], crc.GetCurrentHashAsUInt32());
        _stream.Write(h);
        _stream.Write(payload);

        BytesWritten += h.Length + payload.Length;
        _lastTimestampNs = ns;
        _totalDirty += count;
        IntervalsWritten++;
    }

    /// <summary>Writes the end record (interval count, total dirty pages) and flushes. Required for a complete trace.</summary>
    public void Complete()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed) return;
        Span<byte> e = stackalloc byte[TraceFormat.EndRecordBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(e, TraceFormat.EndTag);
        BinaryPrimitives.WriteUInt32LittleEndian(e[4..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(e[8..], IntervalsWritten);
        BinaryPrimitives.WriteInt64LittleEndian(e[16..], _totalDirty);
        BinaryPrimitives.WriteUInt32LittleEndian(e[24..], Crc32.HashToUInt32(e[..24]));
        _stream.Write(e);
        BytesWritten += e.Length;
        _stream.Flush();
        _completed = true;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (!_leaveOpen) _stream.Dispose();
        else _stream.Flush();
    }

    private void WriteHeader(TraceHeader header)
    {
        var meta = new MemoryStream();
        WriteString(meta, header.Workload, "workload name");
        Span<byte> u16 = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(u16, (ushort)header.Metadata.Count);
        meta.Write(u16);
        foreach (var (key, value) in header.Metadata)
        {
            WriteString(meta, key, "metadata key");
            WriteString(meta, value, "metadata value");
        }
        long length = TraceFormat.HeaderFixedBytes + meta.Length + 4;
        if (length > TraceFormat.MaxHeaderBytes)
            throw new ArgumentException($"trace header would be {length} bytes; workload name and metadata must fit {TraceFormat.MaxHeaderBytes} bytes", nameof(header));

        var bytes = new byte[length];
        Span<byte> b = bytes;
        TraceFormat.Magic.CopyTo(b);
        BinaryPrimitives.WriteUInt16LittleEndian(b[8..], TraceFormat.Version);
        BinaryPrimitives.WriteUInt16LittleEndian(b[10..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(b[12..], (uint)length);
        BinaryPrimitives.WriteUInt32LittleEndian(b[16..], (uint)header.PageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(b[20..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(b[24..], header.PageCount);
        BinaryPrimitives.WriteInt64LittleEndian(b[32..], checked(header.Interval.Ticks * 100));
        meta.GetBuffer().AsSpan(0, (int)meta.Length).CopyTo(b[TraceFormat.HeaderFixedBytes..]);
        BinaryPrimitives.WriteUInt32LittleEndian(b[^4..], Crc32.HashToUInt32(b[..^4]));
        _stream.Write(bytes);
        BytesWritten += bytes.Length;
    }

    private static void WriteString(MemoryStream into, string value, string what)
    {
        ArgumentNullException.ThrowIfNull(value, what);
        byte[] utf8 = Encoding.UTF8.GetBytes(value);
        if (utf8.Length > ushort.MaxValue)
            throw new ArgumentException($"{what} is {utf8.Length} bytes of UTF-8; at most {ushort.MaxValue}");
        Span<byte> u16 = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(u16, (ushort)utf8.Length);
        into.Write(u16);
        into.Write(utf8);
    }
}
