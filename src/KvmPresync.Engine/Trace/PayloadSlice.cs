using KvmPresync.Core;
using System.IO.Hashing;

namespace KvmPresync.Trace;

/// <summary>
/// Read-only view of the next <c>length</c> bytes of the trace stream that feeds every byte it passes through a
/// CRC-32, and reports the file ending early as truncation (with the byte offset) instead of a short read.
/// </summary>
internal sealed class PayloadSlice : Stream
{
    private readonly Stream _inner;
    private readonly Crc32 _crc;
    private readonly long _length;
    private readonly long _startOffset;
    private readonly Func<long, Exception> _truncated;

    public PayloadSlice(Stream inner, long length, Crc32 crc, long startOffset, Func<long, Exception> truncated)
    {
        _inner = inner;
        _length = length;
        _crc = crc;
        _startOffset = startOffset;
        _truncated = truncated;
    }

    /// <summary>Bytes read through the slice so far.</summary>
    public long Consumed { get; private set; }

    public long Remaining => _length - Consumed;

    public override int Read(Span<byte> buffer)
    {
        if (Remaining == 0 || buffer.IsEmpty) return 0;
        int want = (int)Math.Min(buffer.Length, Remaining);
        int got = _inner.Read(buffer[..want]);
        if (got == 0) throw _truncated(_startOffset + Consumed);
        _crc.Append(buffer[..got]);
        Consumed += got;
        return got;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <summary>Reads (and checksums) whatever the decoder left unread.</summary>
    public void Drain()
    {
        Span<byte> sink = stackalloc byte[4096];
        while (Remaining > 0)
        {
            if (Read(sink) == 0) break;
        }
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _length;
    public override long Position { get => Consumed; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
