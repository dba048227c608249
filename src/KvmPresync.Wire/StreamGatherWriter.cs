using System.Buffers;

namespace KvmPresync.Wire;

/// <summary>
/// Gather writes over any <see cref="Stream"/> (NetworkStream, <see cref="RateLimitedStream"/>, SslStream):
/// adjacent segments are merged without copying, then each run is one <c>WriteAsync</c> straight from the
/// caller's memory, and the stream is flushed once per frame.
/// With <c>coalesceBytes</c> &gt; 0, runs shorter than that are first copied into one staging buffer of that size
/// and written together: over an SslStream every <c>WriteAsync</c> becomes at least one TLS record and one send,
/// so scattered 4 KiB pages would otherwise each cost a record header, a tag and a system call
/// (<see cref="TlsTransport.RecordPayloadBytes"/> fills a record).
/// </summary>
public sealed class StreamGatherWriter : IGatherWriter, IDisposable
{
    private readonly Stream _stream;
    private readonly List<ReadOnlyMemory<byte>> _runs = [];
    private readonly int _coalesceBytes;
    private byte[]? _staging;

    public StreamGatherWriter(Stream stream) : this(stream, 0) { }

    public StreamGatherWriter(Stream stream, int coalesceBytes)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(coalesceBytes);
        _stream = stream;
        _coalesceBytes = coalesceBytes;
    }

    public async ValueTask WriteAsync(IReadOnlyList<ReadOnlyMemory<byte>> segments, CancellationToken cancellationToken)
    {
        _runs.Clear();
        SegmentRuns.Merge(segments, _runs);
        try
        {
            if (_coalesceBytes == 0)
            {
                foreach (ReadOnlyMemory<byte> run in _runs)
                    await _stream.WriteAsync(run, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                _staging ??= ArrayPool<byte>.Shared.Rent(_coalesceBytes);
                int staged = 0;
                foreach (ReadOnlyMemory<byte> run in _runs)
                {
                    if (run.Length >= _coalesceBytes)
                    {
                        if (staged > 0) await _stream.WriteAsync(_staging.AsMemory(0, staged), cancellationToken).ConfigureAwait(false);
                        staged = 0;
                        await _stream.WriteAsync(run, cancellationToken).ConfigureAwait(false);
                        continue;
                    }
                    ReadOnlyMemory<byte> rest = run;
                    while (!rest.IsEmpty)
                    {
                        int n = Math.Min(rest.Length, _coalesceBytes - staged);
                        rest.Span[..n].CopyTo(_staging.AsSpan(staged));
                        staged += n;
                        rest = rest[n..];
                        if (staged == _coalesceBytes)
                        {
                            await _stream.WriteAsync(_staging.AsMemory(0, staged), cancellationToken).ConfigureAwait(false);
                            staged = 0;
                        }
                    }
                }
                if (staged > 0) await _stream.WriteAsync(_staging.AsMemory(0, staged), cancellationToken).ConfigureAwait(false);
            }
            await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _runs.Clear(); // drop references into guest memory
        }
    }

    public void Dispose()
    {
        if (_staging is { } staging)
        {
            _staging = null;
            ArrayPool<byte>.Shared.Return(staging);
        }
    }
}
