using System.Buffers;
using System.Net.Sockets;

namespace KvmPresync.Wire;

/// <summary>
/// Writes frames. Small frames are encoded into one pooled buffer and sent at once. A PageBatch is sent as
/// gather I/O: one buffer with header + batch prefix + descriptors, then the caller's payload memory as is
/// (pointing into guest memory) — the writer never copies page data. Frames from concurrent callers are
/// serialized (never interleaved).
/// </summary>
public sealed class FrameWriter
{
    private readonly IGatherWriter _transport;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly List<ReadOnlyMemory<byte>> _segments = [];

    public FrameWriter(IGatherWriter transport)
    {
        ArgumentNullException.ThrowIfNull(transport);
        _transport = transport;
    }

    public FrameWriter(Stream stream) : this(new StreamGatherWriter(stream)) { }

    public FrameWriter(Socket socket) : this(new SocketGatherWriter(socket)) { }

    /// <summary>The negotiated layout; PageBatch writes are refused until <see cref="UseSession"/>.</summary>
    public MemoryLayout? Layout { get; private set; }

    public HelloOptions Options { get; private set; }

    /// <summary>Bytes handed to the transport so far.</summary>
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    private long _bytesWritten;

    /// <summary>Binds the negotiated layout and options (done by the handshake).</summary>
    public void UseSession(MemoryLayout layout, HelloOptions options)
    {
        ArgumentNullException.ThrowIfNull(layout);
        Layout = layout;
        Options = options;
    }

    /// <summary>Writes one frame with a fixed-layout body.</summary>
    public async ValueTask WriteAsync<T>(T body, CancellationToken cancellationToken = default) where T : IFrameBody<T>
    {
        int length = body.BodyLength;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(FrameHeader.Size + length);
        try
        {
            new FrameHeader(T.Type, 0, (ulong)length).Write(buffer);
            body.Write(buffer.AsSpan(FrameHeader.Size, length));
            await SendAsync(buffer.AsMemory(0, FrameHeader.Size + length), null, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Writes a PageBatch: <paramref name="payloads"/> holds one page-size buffer per Full descriptor, in
    /// descriptor order, and is sent without copying. Validates like the reader does (count, kinds, pages
    /// inside the layout, payload sizes) and throws <see cref="ArgumentException"/> on a local mistake.
    /// </summary>
    public async ValueTask WritePageBatchAsync(ulong roundId, ReadOnlyMemory<PageDescriptor> descriptors,
        IReadOnlyList<ReadOnlyMemory<byte>> payloads, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(payloads);
        MemoryLayout layout = Layout ?? throw new InvalidOperationException("no session: run the handshake before sending pages");
        int full = CheckBatch(layout, descriptors.Span, payloads);

        int prefixLength = FrameHeader.Size + PageBatch.FixedLength + descriptors.Length * PageDescriptor.WireLength;
        byte[] prefix = ArrayPool<byte>.Shared.Rent(prefixLength);
        try
        {
            new FrameHeader(FrameType.PageBatch, 0, PageBatch.BodyLength(descriptors.Length, full, layout.PageSize)).Write(prefix);
            PageBatch.WritePrefix(prefix.AsSpan(FrameHeader.Size), roundId, descriptors.Span);
            await SendAsync(prefix.AsMemory(0, prefixLength), payloads, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(prefix);
        }
    }

    /// <summary>
    /// Writes a compressed PageBatch (protocol 1.3, <see cref="HelloOptions.CompressedPages"/> negotiated): the descriptors,
    /// then <paramref name="compressed"/>, which must decompress with <paramref name="codec"/> to the Full pages' payloads
    /// concatenated in descriptor order, and be smaller than them (else send the batch raw). Checked like the reader checks.
    /// </summary>
    public async ValueTask WriteCompressedPageBatchAsync(ulong roundId, ReadOnlyMemory<PageDescriptor> descriptors, PageCodec codec,
        ReadOnlyMemory<byte> compressed, CancellationToken cancellationToken = default)
    {
        MemoryLayout layout = Layout ?? throw new InvalidOperationException("no session: run the handshake before sending pages");
        if (!Options.HasFlag(HelloOptions.CompressedPages))
            throw new InvalidOperationException($"this session did not negotiate CompressedPages (options {Options})");
        if (codec is not (PageCodec.Lz4 or PageCodec.Zstd))
            throw new ArgumentOutOfRangeException(nameof(codec), codec, "a compressed batch needs codec Lz4 or Zstd");
        int full = CheckBatch(layout, descriptors.Span, null);
        long raw = (long)full * layout.PageSize;
        if (full == 0 || raw > WireLimits.MaxCompressedBatchBytes)
            throw new ArgumentException($"a compressed batch stands for 1 … {WireLimits.MaxCompressedBatchBytes} bytes of Full pages, this one for {raw}", nameof(descriptors));
        if (compressed.Length == 0 || compressed.Length >= raw)
            throw new ArgumentException($"compressed payload of {compressed.Length} bytes for {raw} raw bytes: must be smaller (send it raw)", nameof(compressed));

        int prefixLength = FrameHeader.Size + PageBatch.FixedLength + descriptors.Length * PageDescriptor.WireLength + PageBatch.CompressedFieldsLength;
        byte[] prefix = ArrayPool<byte>.Shared.Rent(prefixLength);
        try
        {
            new FrameHeader(FrameType.PageBatch, 0, PageBatch.CompressedBodyLength(descriptors.Length, compressed.Length)).Write(prefix);
            PageBatch.WritePrefix(prefix.AsSpan(FrameHeader.Size), roundId, descriptors.Span, codec);
            CompressedBatch.WriteLengths(prefix.AsSpan(prefixLength - PageBatch.CompressedFieldsLength), compressed.Length, (int)raw);
            await SendAsync(prefix.AsMemory(0, prefixLength), [compressed], cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(prefix);
        }
    }

    private int CheckBatch(MemoryLayout layout, ReadOnlySpan<PageDescriptor> descriptors, IReadOnlyList<ReadOnlyMemory<byte>>? payloads)
    {
        if (descriptors.Length > WireLimits.MaxPagesPerBatch)
            throw new ArgumentException($"a PageBatch holds at most {WireLimits.MaxPagesPerBatch} descriptors, got {descriptors.Length}", nameof(descriptors));
        int full = 0;
        for (int i = 0; i < descriptors.Length; i++)
        {
            PageDescriptor d = descriptors[i];
            bool allowed = d.Kind switch
            {
                PageKind.Full => true,
                PageKind.Zero => Options.HasFlag(HelloOptions.ZeroPages),
                PageKind.Unchanged => Options.HasFlag(HelloOptions.UnchangedPages),
                _ => false,
            };
            if (!allowed)
                throw new ArgumentException($"descriptor {i}: page kind {d.Kind} is not valid in this session (options {Options})", nameof(descriptors));
            if (!layout.Contains(d.PageNumber))
                throw new ArgumentException($"descriptor {i}: page {d.PageNumber} is outside the layout ({layout.TotalPages} pages)", nameof(descriptors));
            if (d.Kind == PageKind.Full)
            {
                if (payloads is not null && full < payloads.Count && payloads[full].Length != layout.PageSize)
                    throw new ArgumentException($"payload {full} (descriptor {i}) is {payloads[full].Length} bytes, a page is {layout.PageSize}", nameof(payloads));
                full++;
            }
        }
        if (payloads is not null && payloads.Count != full)
            throw new ArgumentException($"{full} descriptors are Full but {payloads.Count} payloads were given", nameof(payloads));
        return full;
    }

    private async ValueTask SendAsync(ReadOnlyMemory<byte> head, IReadOnlyList<ReadOnlyMemory<byte>>? tail, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long total = head.Length;
            _segments.Add(head);
            if (tail is not null)
            {
                for (int i = 0; i < tail.Count; i++)
                {
                    _segments.Add(tail[i]);
                    total += tail[i].Length;
                }
            }
            try
            {
                await _transport.WriteAsync(_segments, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                throw new ProtocolException(ProtocolError.ConnectionFailed, "transport", null,
                    $"connection failed while writing a frame: {e.Message}", e);
            }
            catch (System.Security.Authentication.AuthenticationException e)
            {
                throw new ProtocolException(ProtocolError.TlsFailed, "transport", null,
                    $"TLS failed while writing a frame: {e.Message}{(e.InnerException is { } i ? " — " + i.Message : "")}", e);
            }
            Interlocked.Add(ref _bytesWritten, total);
        }
        finally
        {
            _segments.Clear(); // drop references into guest memory
            _lock.Release();
        }
    }
}
