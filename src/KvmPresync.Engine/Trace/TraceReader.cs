using KvmPresync.Core;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;
using KvmPresync.Memory;

namespace KvmPresync.Trace;

/// <summary>
/// Streams a dirty trace written by <see cref="TraceWriter"/>, validating every field: magic, version, CRCs, record
/// order, lengths against caps derived from the page count, runs within the page count, declared page counts.
/// Memory is constant (small fixed buffers); no length read from the file is used to size an allocation.
/// Every problem is a <see cref="TraceFormatException"/> naming the file, the record and the byte offset.
/// </summary>
public sealed class TraceReader : IDisposable
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly bool _allowMissingEnd;
    private readonly byte[] _recordHeader = new byte[TraceFormat.IntervalHeaderBytes];
    private readonly byte[] _decodeBuffer = new byte[8192];
    private long _offset;
    private long _lastTimestampNs;
    private long _totalDirty;
    private bool _ended;

    /// <param name="stream">The trace, positioned at its first byte.</param>
    /// <param name="name">Name used in error messages (usually the file path).</param>
    /// <param name="allowMissingEnd">Accept a trace that stops cleanly after an interval without its end record (an interrupted recording); otherwise that is an error.</param>
    public TraceReader(Stream stream, string name, bool leaveOpen = false, bool allowMissingEnd = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(name);
        _stream = stream;
        Name = name;
        _leaveOpen = leaveOpen;
        _allowMissingEnd = allowMissingEnd;
        Header = ReadHeader();
    }

    public static TraceReader Open(string path, bool allowMissingEnd = false)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            return new TraceReader(file, path, leaveOpen: false, allowMissingEnd);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public string Name { get; }

    public TraceHeader Header { get; }

    public long IntervalsRead { get; private set; }

    /// <summary>True once the end record has been read and verified.</summary>
    public bool Completed { get; private set; }

    /// <summary>
    /// Reads the next interval and ORs its dirty pages into <paramref name="into"/>. Returns false at the end of the
    /// trace. On an exception the bitmap may hold part of the failed interval's pages.
    /// </summary>
    public bool TryReadInterval(DirtyBitmap into, out TraceInterval interval)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (into.PageCount != Header.PageCount)
            throw new ArgumentException($"bitmap covers {into.PageCount} pages, trace {Name} covers {Header.PageCount}", nameof(into));
        interval = default;
        if (_ended) return false;

        string record = $"interval {IntervalsRead}";
        long recordStart = _offset;
        Span<byte> h = _recordHeader;
        int got = ReadUpTo(h[..4]);
        if (got == 0)
        {
            _ended = true;
            if (_allowMissingEnd) return false;
            throw Error(record, recordStart, $"missing: the file ends after {IntervalsRead} intervals without an end record (recording interrupted?)");
        }
        if (got < 4) throw Error(record, _offset, "truncated");

        uint tag = BinaryPrimitives.ReadUInt32LittleEndian(h);
        if (tag == TraceFormat.EndTag)
        {
            ReadEnd(recordStart);
            return false;
        }
        if (tag != TraceFormat.IntervalTag)
            throw Error(record, recordStart, $"has unknown record tag 0x{tag:X8} (expected \"IVAL\" or \"TEND\"; file corrupt)");

        ReadExact(h[4..], record);
        uint encoding = BinaryPrimitives.ReadUInt32LittleEndian(h[4..]);
        long index = BinaryPrimitives.ReadInt64LittleEndian(h[8..]);
        long ns = BinaryPrimitives.ReadInt64LittleEndian(h[16..]);
        ulong progress = BinaryPrimitives.ReadUInt64LittleEndian(h[24..]);
        long dirtyPages = BinaryPrimitives.ReadInt64LittleEndian(h[32..]);
        int payloadLength = BinaryPrimitives.ReadInt32LittleEndian(h[40..]);
        int decodedLength = BinaryPrimitives.ReadInt32LittleEndian(h[44..]);
        uint expectedCrc = BinaryPrimitives.ReadUInt32LittleEndian(h[48..]);

        if (encoding is not (TraceFormat.EncodingRuns or TraceFormat.EncodingRunsDeflate))
            throw Error(record, recordStart + 4, $"has unknown payload encoding {encoding}");
        if (index != IntervalsRead)
            throw Error(record, recordStart + 8, $"has index {index} (intervals out of order or missing)");
        if (ns < _lastTimestampNs)
            throw Error(record, recordStart + 16, $"timestamp {ns} ns goes backwards (previous {_lastTimestampNs} ns)");
        if (dirtyPages < 0 || dirtyPages > Header.PageCount)
            throw Error(record, recordStart + 32, $"declares {dirtyPages} dirty pages, outside 0..{Header.PageCount}");
        long maxDecoded = Math.Min(int.MaxValue, TraceFormat.MaxDecodedBytes(Header.PageCount));
        if (decodedLength < 0 || decodedLength > maxDecoded)
            throw Error(record, recordStart + 44, $"declares a decoded length of {decodedLength} bytes, outside 0..{maxDecoded}");
        if (payloadLength < 0 || payloadLength > decodedLength || (encoding == TraceFormat.EncodingRuns && payloadLength != decodedLength))
            throw Error(record, recordStart + 40, $"declares a payload length of {payloadLength} bytes, inconsistent with encoding {encoding} and decoded length {decodedLength}");

        var crc = new Crc32();
        crc.Append(h[..48]);
        long payloadStart = _offset;
        var slice = new PayloadSlice(_stream, payloadLength, crc, payloadStart, at => Error(record, at, "truncated"));
        long count;
        try
        {
            count = encoding == TraceFormat.EncodingRuns
                ? DecodeRuns(slice, decodedLength, into, record, payloadStart)
                : DecodeDeflated(slice, decodedLength, into, record, payloadStart);
            slice.Drain();
        }
        finally
        {
            _offset = payloadStart + slice.Consumed;
        }
        if (crc.GetCurrentHashAsUInt32() != expectedCrc)
            throw Error(record, recordStart, $"fails its CRC-32 check (stored 0x{expectedCrc:X8}, computed 0x{crc.GetCurrentHashAsUInt32():X8}; file corrupt)");
        if (count != dirtyPages)
            throw Error(record, recordStart + 32, $"declares {dirtyPages} dirty pages but its runs hold {count}");

        _lastTimestampNs = ns;
        _totalDirty += count;
        IntervalsRead++;
        interval = new TraceInterval(index, TimeSpan.FromTicks(ns / 100), progress, count);
        return true;
    }

    public void Dispose()
    {
        if (!_leaveOpen) _stream.Dispose();
    }

    private long DecodeDeflated(PayloadSlice slice, int decodedLength, DirtyBitmap into, string record, long payloadStart)
    {
        using var inflate = new DeflateStream(slice, CompressionMode.Decompress, leaveOpen: true);
        try
        {
            long count = DecodeRuns(inflate, decodedLength, into, record, payloadStart);
            if (inflate.Read(_decodeBuffer, 0, 1) != 0)
                throw Error(record, payloadStart, $"payload inflates to more than its declared {decodedLength} bytes");
            return count;
        }
        catch (InvalidDataException ex)
        {
            throw Error(record, payloadStart + slice.Consumed, $"payload is not valid deflate data ({ex.Message})");
        }
    }

    /// <summary>Decodes exactly <paramref name="decodedLength"/> bytes of run list from <paramref name="source"/> into the bitmap.</summary>
    private long DecodeRuns(Stream source, int decodedLength, DirtyBitmap into, string record, long payloadStart)
    {
        Span<ulong> words = into.Words;
        long pageCount = Header.PageCount;
        byte[] buf = _decodeBuffer;
        int have = 0, pos = 0;
        long decoded = 0, position = 0, count = 0;
        bool second = false;
        long start = 0;

        while (decoded < decodedLength)
        {
            // One LEB128 varint.
            ulong value = 0;
            int shift = 0;
            while (true)
            {
                if (pos == have)
                {
                    int want = (int)Math.Min(buf.Length, decodedLength - decoded);
                    if (want == 0) throw Error(record, payloadStart, $"run list ends inside a number (decoded length {decodedLength})");
                    have = source.Read(buf, 0, want);
                    pos = 0;
                    if (have == 0) throw Error(record, payloadStart, $"payload decodes to {decoded} bytes, fewer than its declared {decodedLength}");
                }
                byte b = buf[pos++];
                decoded++;
                if (shift == 63 && b > 1) throw Error(record, payloadStart, "run list holds a number wider than 64 bits");
                value |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) break;
                shift += 7;
                if (shift > 63) throw Error(record, payloadStart, "run list holds a number wider than 64 bits");
                if (decoded == decodedLength) throw Error(record, payloadStart, "run list ends inside a number");
            }

            if (!second)
            {
                if (value > (ulong)(pageCount - position))
                    throw Error(record, payloadStart, $"has a run starting past the last page ({pageCount} pages)");
                start = position + (long)value;
                second = true;
            }
            else
            {
                if (value >= (ulong)(pageCount - start))
                    throw Error(record, payloadStart, $"has a run [{start}, {start}+{value}+1) past the last page ({pageCount} pages)");
                long end = start + (long)value + 1;
                TraceFormat.SetRange(words, start, end);
                count += end - start;
                position = end;
                second = false;
            }
        }
        if (second) throw Error(record, payloadStart, "run list ends after a run's start without its length");
        return count;
    }

    private void ReadEnd(long recordStart)
    {
        const string record = "end record";
        Span<byte> e = stackalloc byte[TraceFormat.EndRecordBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(e, TraceFormat.EndTag);
        ReadExact(e[4..], record);
        uint reserved = BinaryPrimitives.ReadUInt32LittleEndian(e[4..]);
        long intervals = BinaryPrimitives.ReadInt64LittleEndian(e[8..]);
        long total = BinaryPrimitives.ReadInt64LittleEndian(e[16..]);
        uint storedCrc = BinaryPrimitives.ReadUInt32LittleEndian(e[24..]);
        if (Crc32.HashToUInt32(e[..24]) != storedCrc)
            throw Error(record, recordStart, "fails its CRC-32 check (file corrupt)");
        if (reserved != 0)
            throw Error(record, recordStart + 4, $"has non-zero reserved field {reserved}");
        if (intervals != IntervalsRead)
            throw Error(record, recordStart + 8, $"counts {intervals} intervals but the file holds {IntervalsRead}");
        if (total != _totalDirty)
            throw Error(record, recordStart + 16, $"counts {total} dirty pages but the intervals hold {_totalDirty}");
        Span<byte> one = stackalloc byte[1];
        if (ReadUpTo(one) != 0)
            throw Error(record, _offset - 1, "is followed by trailing bytes");
        _ended = true;
        Completed = true;
    }

    private TraceHeader ReadHeader()
    {
        const string record = "header";
        Span<byte> f = stackalloc byte[TraceFormat.HeaderFixedBytes];
        ReadExact(f, record);
        if (!f[..8].SequenceEqual(TraceFormat.Magic))
            throw Error(record, 0, "does not start with the magic \"KPDTRACE\" (not a KvmPresync dirty trace)");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(f[8..]);
        if (version != TraceFormat.Version)
            throw Error(record, 8, $"has format version {version}; this reader understands version {TraceFormat.Version} (re-record the trace or update kvmpresync)");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(f[12..]);
        if (length < TraceFormat.HeaderFixedBytes + 8 || length > TraceFormat.MaxHeaderBytes)
            throw Error(record, 12, $"declares a header length of {length} bytes, outside {TraceFormat.HeaderFixedBytes + 8}..{TraceFormat.MaxHeaderBytes}");
        var bytes = new byte[length];
        f.CopyTo(bytes);
        ReadExact(bytes.AsSpan(TraceFormat.HeaderFixedBytes), record);
        uint storedCrc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)length - 4));
        if (Crc32.HashToUInt32(bytes.AsSpan(0, (int)length - 4)) != storedCrc)
            throw Error(record, 0, "fails its CRC-32 check (file corrupt)");
        if (BinaryPrimitives.ReadUInt16LittleEndian(f[10..]) != 0 || BinaryPrimitives.ReadUInt32LittleEndian(f[20..]) != 0)
            throw Error(record, 10, "has non-zero reserved fields");

        int pageSize = (int)Math.Min(int.MaxValue, BinaryPrimitives.ReadUInt32LittleEndian(f[16..]));
        long pageCount = BinaryPrimitives.ReadInt64LittleEndian(f[24..]);
        long intervalNs = BinaryPrimitives.ReadInt64LittleEndian(f[32..]);
        var reader = new HeaderFields(bytes, TraceFormat.HeaderFixedBytes, (int)length - 4, (at, problem) => Error(record, at, problem));
        string workload = reader.String();
        int pairs = reader.UInt16();
        var metadata = new Dictionary<string, string>(pairs);
        for (int i = 0; i < pairs; i++)
        {
            long at = reader.Offset;
            string key = reader.String();
            if (!metadata.TryAdd(key, reader.String())) throw Error(record, at, $"repeats metadata key \"{key}\"");
        }
        if (reader.Offset != length - 4) throw Error(record, reader.Offset, $"has {length - 4 - reader.Offset} unused bytes after its metadata");

        var header = new TraceHeader
        {
            PageSize = pageSize,
            PageCount = pageCount,
            Interval = TimeSpan.FromTicks(Math.Max(0, intervalNs) / 100),
            Workload = workload,
            Metadata = metadata,
        };
        try
        {
            header.Validate();
        }
        catch (ArgumentException ex)
        {
            throw Error(record, 16, $"is invalid: {ex.Message}");
        }
        return header;
    }

    private void ReadExact(Span<byte> into, string record)
    {
        int got = ReadUpTo(into);
        if (got < into.Length) throw Error(record, _offset, "truncated");
    }

    private int ReadUpTo(Span<byte> into)
    {
        int total = 0;
        while (total < into.Length)
        {
            int n = _stream.Read(into[total..]);
            if (n == 0) break;
            total += n;
        }
        _offset += total;
        return total;
    }

    private TraceFormatException Error(string record, long offset, string problem) => new(Name, record, offset, problem);

    /// <summary>Bounds-checked little-endian reads over the header's metadata bytes.</summary>
    private sealed class HeaderFields(byte[] bytes, int offset, int end, Func<long, string, Exception> error)
    {
        public int Offset { get; private set; } = offset;

        public ushort UInt16()
        {
            if (end - Offset < 2) throw error(Offset, "metadata overruns the header length");
            ushort v = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(Offset));
            Offset += 2;
            return v;
        }

        public string String()
        {
            int n = UInt16();
            if (end - Offset < n) throw error(Offset, "metadata overruns the header length");
            string s;
            try
            {
                s = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, Offset, n);
            }
            catch (DecoderFallbackException)
            {
                throw error(Offset, "metadata text is not valid UTF-8");
            }
            Offset += n;
            return s;
        }
    }
}
