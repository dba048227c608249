namespace KvmPresync.Wire;

/// <summary>
/// Wraps a stream (the migration connection) so that it moves bytes no faster than a link of a given rate:
/// writes wait for tokens before each chunk goes out, reads charge the bytes they return before returning
/// them. Each direction has its own <see cref="TokenBucket"/> (a full-duplex link). Payload reads still land
/// directly in the caller's buffer; nothing is copied.
/// </summary>
public sealed class RateLimitedStream : Stream
{
    /// <summary>Largest piece moved per token reservation (keeps pacing smooth).</summary>
    public const int ChunkBytes = 64 * 1024;

    private readonly Stream _inner;
    private readonly TokenBucket? _readBucket;
    private readonly TokenBucket? _writeBucket;
    private readonly bool _leaveOpen;

    public RateLimitedStream(Stream inner, TokenBucket? readBucket, TokenBucket? writeBucket, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
        _readBucket = readBucket;
        _writeBucket = writeBucket;
        _leaveOpen = leaveOpen;
    }

    /// <summary>Limits both directions to <paramref name="bitsPerSecond"/> each (burst: <see cref="TokenBucket.DefaultBurstBytes"/> unless given).</summary>
    public static RateLimitedStream Create(Stream inner, long bitsPerSecond, long? burstBytes = null, TimeProvider? timeProvider = null, bool leaveOpen = false)
    {
        long burst = burstBytes ?? TokenBucket.DefaultBurstBytes(bitsPerSecond);
        return new RateLimitedStream(inner, new TokenBucket(bitsPerSecond, burst, timeProvider), new TokenBucket(bitsPerSecond, burst, timeProvider), leaveOpen);
    }

    public TokenBucket? ReadBucket => _readBucket;

    public TokenBucket? WriteBucket => _writeBucket;

    public override bool CanRead => _inner.CanRead;
    public override bool CanWrite => _inner.CanWrite;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = _inner.Read(buffer[..Math.Min(buffer.Length, ChunkBytes)]);
        if (n > 0) _readBucket?.Wait(n);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await _inner.ReadAsync(buffer[..Math.Min(buffer.Length, ChunkBytes)], cancellationToken).ConfigureAwait(false);
        if (n > 0 && _readBucket is not null) await _readBucket.WaitAsync(n, cancellationToken).ConfigureAwait(false);
        return n;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            ReadOnlySpan<byte> chunk = buffer[..Math.Min(buffer.Length, ChunkBytes)];
            _writeBucket?.Wait(chunk.Length);
            _inner.Write(chunk);
            buffer = buffer[chunk.Length..];
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            ReadOnlyMemory<byte> chunk = buffer[..Math.Min(buffer.Length, ChunkBytes)];
            if (_writeBucket is not null) await _writeBucket.WaitAsync(chunk.Length, cancellationToken).ConfigureAwait(false);
            await _inner.WriteAsync(chunk, cancellationToken).ConfigureAwait(false);
            buffer = buffer[chunk.Length..];
        }
    }

    public override void Flush() => _inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_leaveOpen) _inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_leaveOpen) await _inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
