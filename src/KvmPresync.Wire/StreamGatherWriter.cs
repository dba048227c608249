namespace KvmPresync.Wire;

/// <summary>
/// Gather writes over any <see cref="Stream"/> (NetworkStream, <see cref="RateLimitedStream"/>, SslStream):
/// adjacent segments are merged without copying, then each run is one <c>WriteAsync</c> straight from the
/// caller's memory, and the stream is flushed once per frame.
/// </summary>
public sealed class StreamGatherWriter : IGatherWriter
{
    private readonly Stream _stream;
    private readonly List<ReadOnlyMemory<byte>> _runs = [];

    public StreamGatherWriter(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
    }

    public async ValueTask WriteAsync(IReadOnlyList<ReadOnlyMemory<byte>> segments, CancellationToken cancellationToken)
    {
        _runs.Clear();
        SegmentRuns.Merge(segments, _runs);
        try
        {
            foreach (ReadOnlyMemory<byte> run in _runs)
                await _stream.WriteAsync(run, cancellationToken).ConfigureAwait(false);
            await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _runs.Clear(); // drop references into guest memory
        }
    }
}
