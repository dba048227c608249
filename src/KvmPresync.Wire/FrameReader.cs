using KvmPresync.Memory;
using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace KvmPresync.Wire;

/// <summary>
/// Reads frames from a stream, validating before it reads or allocates: header type, flags and the per-type
/// length cap first, then every body field. PageBatch is streamed: <see cref="ReadPageBatchAsync"/> returns the
/// validated descriptors, then the caller moves each Full payload straight into memory of its choice with
/// <see cref="ReadPayload"/> / <see cref="ReadPayloadAsync"/> (e.g. the destination guest mapping) — the reader
/// keeps no intermediate copy of page data.
/// <para>
/// EOF exactly between frames is <see cref="ProtocolError.PeerClosed"/>; EOF inside a frame is
/// <see cref="ProtocolError.Truncated"/>; a transport error is <see cref="ProtocolError.ConnectionFailed"/>.
/// One reader per connection direction; not thread-safe.
/// </para>
/// </summary>
public sealed class FrameReader
{
    private readonly Stream _stream;
    private readonly byte[] _headerBuffer = new byte[FrameHeader.Size];
    private byte[] _descriptorBytes = [];
    private PageDescriptor[] _descriptors = [];
    private FrameHeader? _pendingBody;        // header read, body not yet consumed
    private int _payloadsLeft;
    private int _payloadsRead;
    private int _nextDescriptor;              // scan position for the next Full descriptor
    private PageCodec _batchCodec;            // the current batch's payloads come from _decompressed, not the stream
    private byte[] _compressed = [];          // ≤ WireLimits.MaxCompressedBatchBytes, grown on need
    private byte[] _decompressed = [];        // ≤ WireLimits.MaxCompressedBatchBytes, grown on need
    private PageCompression? _codecs;

    public FrameReader(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
    }

    /// <summary>The negotiated layout; null until <see cref="UseSession"/> (PageBatch is refused before it).</summary>
    public MemoryLayout? Layout { get; private set; }

    public HelloOptions Options { get; private set; }

    /// <summary>Bytes consumed from the stream so far (headers, bodies and payloads).</summary>
    public long BytesRead { get; private set; }

    /// <summary>Payloads of the current PageBatch still to be read or skipped.</summary>
    public int PayloadsRemaining => _payloadsLeft;

    /// <summary>Binds the negotiated layout and options (done by the handshake).</summary>
    public void UseSession(MemoryLayout layout, HelloOptions options)
    {
        ArgumentNullException.ThrowIfNull(layout);
        Layout = layout;
        Options = options;
        if (options.HasFlag(HelloOptions.CompressedPages)) _ = PageCompression.Warm(); // the decoders' JIT, before the first batch
    }

    /// <summary>Reads and validates the next frame header.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<FrameHeader> ReadHeaderAsync(CancellationToken cancellationToken = default)
    {
        if (_payloadsLeft > 0)
            throw new InvalidOperationException($"{_payloadsLeft} payload(s) of the current PageBatch are unread; read or skip them before the next frame");
        if (_pendingBody is { } pending)
            throw new InvalidOperationException($"the body of the {pending} frame is unread; read it before the next frame");
        await FillAsync(_headerBuffer, "header", frameBoundary: true, cancellationToken).ConfigureAwait(false);
        FrameHeader.TryRead(_headerBuffer, out FrameHeader header);
        header.Validate(Layout?.PageSize ?? 0);
        _pendingBody = header; // every body, even an empty one, is consumed through a Read*BodyAsync call
        return header;
    }

    /// <summary>Reads and decodes the body of <paramref name="header"/> (just returned by <see cref="ReadHeaderAsync"/>) as a <typeparamref name="T"/>.</summary>
    public async ValueTask<T> ReadBodyAsync<T>(FrameHeader header, CancellationToken cancellationToken = default) where T : IFrameBody<T>
    {
        if (header.Type != T.Type)
            throw new InvalidOperationException($"the frame is a {header.Type}, not a {T.Type}");
        byte[] body = await ReadRawBodyAsync(header, cancellationToken).ConfigureAwait(false);
        return T.Read(body);
    }

    /// <summary>
    /// Reads the next frame, which must be a <typeparamref name="T"/>. An Abort from the peer is thrown as its
    /// exception (<see cref="Abort.ToException"/>); any other type is <see cref="ProtocolError.UnexpectedFrame"/>.
    /// </summary>
    public async ValueTask<T> ReadExpectedAsync<T>(CancellationToken cancellationToken = default) where T : IFrameBody<T>
    {
        FrameHeader header = await ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
        if (header.Type == FrameType.Abort && T.Type != FrameType.Abort)
            throw (await ReadBodyAsync<Abort>(header, cancellationToken).ConfigureAwait(false)).ToException();
        if (header.Type != T.Type)
            throw new ProtocolException(ProtocolError.UnexpectedFrame, "FrameHeader.type", header.Type,
                $"expected frame {T.Type}, the peer sent {header.Type}");
        return await ReadBodyAsync<T>(header, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The body bytes of <paramref name="header"/>, exactly as received (the handshake MACs them).</summary>
    public async ValueTask<byte[]> ReadRawBodyAsync(FrameHeader header, CancellationToken cancellationToken = default)
    {
        TakePending(header);
        if (header.Type == FrameType.PageBatch)
            throw new InvalidOperationException("PageBatch bodies are streamed: use ReadPageBatchAsync");
        // The length was checked against the type's cap in ReadHeaderAsync, so this allocation is bounded.
        byte[] body = header.BodyLength == 0 ? [] : new byte[checked((int)header.BodyLength)];
        await FillAsync(body, $"{header.Type} body", frameBoundary: false, cancellationToken).ConfigureAwait(false);
        return body;
    }

    /// <summary>
    /// Reads a PageBatch's round id and descriptors and validates them: count ≤ cap, every kind known and
    /// negotiated, every page inside the layout, and the declared body length equal to what the descriptors
    /// imply. Then <see cref="PageBatch.FullPages"/> payloads must be consumed before the next frame.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<PageBatch> ReadPageBatchAsync(FrameHeader header, CancellationToken cancellationToken = default)
    {
        if (header.Type != FrameType.PageBatch)
            throw new InvalidOperationException($"the frame is a {header.Type}, not a PageBatch");
        TakePending(header);
        MemoryLayout layout = Layout ?? throw new InvalidOperationException("no session: the handshake has not bound a layout");

        byte[] prefix = ArrayPool<byte>.Shared.Rent(PageBatch.FixedLength);
        ulong roundId;
        uint count;
        PageCodec codec;
        try
        {
            await FillAsync(prefix.AsMemory(0, PageBatch.FixedLength), "PageBatch body", frameBoundary: false, cancellationToken).ConfigureAwait(false);
            roundId = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            count = BinaryPrimitives.ReadUInt32LittleEndian(prefix.AsSpan(8));
            codec = CompressedBatch.ReadCodec(BinaryPrimitives.ReadUInt32LittleEndian(prefix.AsSpan(12)), Options);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(prefix);
        }
        if (count > WireLimits.MaxPagesPerBatch)
            throw new ProtocolException(ProtocolError.TooManyPages, "PageBatch.count", count,
                $"PageBatch round {roundId}: {count} descriptors, the limit is {WireLimits.MaxPagesPerBatch}");
        ulong descriptorBytes = (ulong)count * PageDescriptor.WireLength;
        if (PageBatch.FixedLength + descriptorBytes > header.BodyLength)
            throw new ProtocolException(ProtocolError.BodyLengthMismatch, "FrameHeader.bodyLength", header.BodyLength,
                $"PageBatch round {roundId}: body is {header.BodyLength} bytes, too short for its {count} descriptors ({PageBatch.FixedLength + descriptorBytes} bytes)");

        int n = (int)count;
        if (_descriptorBytes.Length < n * PageDescriptor.WireLength)
        {
            _descriptorBytes = new byte[n * PageDescriptor.WireLength];
            _descriptors = new PageDescriptor[n];
        }
        Memory<byte> raw = _descriptorBytes.AsMemory(0, n * PageDescriptor.WireLength);
        await FillAsync(raw, "PageBatch descriptors", frameBoundary: false, cancellationToken).ConfigureAwait(false);

        int full = 0;
        ReadOnlySpan<byte> span = raw.Span;
        for (int i = 0; i < n; i++)
        {
            PageDescriptor d = PageDescriptor.Read(span.Slice(i * PageDescriptor.WireLength, PageDescriptor.WireLength), i, layout, Options);
            _descriptors[i] = d;
            if (d.Kind == PageKind.Full) full++;
        }
        int compressedLength = 0;
        if (codec == PageCodec.None)
        {
            ulong expected = PageBatch.BodyLength(n, full, layout.PageSize);
            if (header.BodyLength != expected)
                throw new ProtocolException(ProtocolError.BodyLengthMismatch, "FrameHeader.bodyLength", header.BodyLength,
                    $"PageBatch round {roundId}: body is {header.BodyLength} bytes, {n} descriptors with {full} Full pages of {layout.PageSize} bytes imply {expected}");
        }
        else
        {
            compressedLength = await ReadCompressedPayloadAsync(header, roundId, n, full, codec, layout.PageSize, cancellationToken).ConfigureAwait(false);
        }

        _batchCodec = codec;
        _payloadsLeft = full;
        _payloadsRead = 0;
        _nextDescriptor = 0;
        return new PageBatch(roundId, _descriptors.AsMemory(0, n), full, codec, compressedLength);
    }

    /// <summary>
    /// A compressed batch's tail: its two lengths, validated field by field against the descriptors and the caps before
    /// anything is read, then the compressed bytes, decompressed at once into a bounded buffer the payload reads copy from —
    /// so a batch that does not decompress to exactly its Full pages fails before any page is written.
    /// </summary>
    private async ValueTask<int> ReadCompressedPayloadAsync(FrameHeader header, ulong roundId, int count, int full, PageCodec codec,
        int pageSize, CancellationToken cancellationToken)
    {
        byte[] fields = ArrayPool<byte>.Shared.Rent(PageBatch.CompressedFieldsLength);
        int compressedLength, rawLength;
        try
        {
            CompressedBatch.CheckShape(header.BodyLength, roundId, count, full, pageSize);
            await FillAsync(fields.AsMemory(0, PageBatch.CompressedFieldsLength), "PageBatch compressed lengths", frameBoundary: false, cancellationToken).ConfigureAwait(false);
            (compressedLength, rawLength) = CompressedBatch.ReadLengths(fields, header.BodyLength, roundId, count, full, pageSize, codec);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(fields);
        }
        if (_compressed.Length < compressedLength) _compressed = new byte[compressedLength];
        if (_decompressed.Length < rawLength) _decompressed = new byte[rawLength];
        await FillAsync(_compressed.AsMemory(0, compressedLength), "PageBatch compressed payload", frameBoundary: false, cancellationToken).ConfigureAwait(false);
        _codecs ??= new PageCompression();
        _codecs.Decompress(codec, _compressed.AsSpan(0, compressedLength), _decompressed.AsSpan(0, rawLength), $"PageBatch round {roundId}");
        return compressedLength;
    }

    /// <summary>The descriptor whose payload the next <see cref="ReadPayload"/> delivers.</summary>
    public PageDescriptor NextPayloadDescriptor
    {
        get
        {
            if (_payloadsLeft == 0) throw new InvalidOperationException("no PageBatch payload is pending");
            return _descriptors[AdvanceToFull()];
        }
    }

    /// <summary>
    /// Reads the next Full page's payload into <paramref name="destination"/>, which must be exactly one page.
    /// Writes nothing outside it. On a truncated stream the destination may hold a partial page.
    /// </summary>
    public void ReadPayload(Span<byte> destination)
    {
        BeginPayload(destination.Length);
        if (_batchCodec != PageCodec.None)
        {
            DecompressedPayload().CopyTo(destination);
            EndPayload();
            return;
        }
        int got = 0;
        while (got < destination.Length)
        {
            int n;
            try
            {
                n = _stream.Read(destination[got..]);
            }
            catch (IOException e)
            {
                throw ConnectionFailed(CurrentPayload(), e);
            }
            catch (System.Security.Authentication.AuthenticationException e)
            {
                throw TlsFailed(CurrentPayload(), e);
            }
            if (n == 0) throw Truncated(got, destination.Length, CurrentPayload()); // described only on error: no allocation per page
            got += n;
            BytesRead += n;
        }
        EndPayload();
    }

    /// <summary>Asynchronous <see cref="ReadPayload"/>; for native memory wrap it with <see cref="UnmanagedMemoryManager"/>.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ReadPayloadAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        BeginPayload(destination.Length);
        if (_batchCodec != PageCodec.None)
            DecompressedPayload().CopyTo(destination.Span);
        else
            await FillAsync(destination, null, frameBoundary: false, cancellationToken).ConfigureAwait(false);
        EndPayload();
    }

    /// <summary>Reads and discards the next payload (e.g. a receiver that was told to drop a round).</summary>
    public async ValueTask SkipPayloadAsync(CancellationToken cancellationToken = default)
    {
        int size = Layout?.PageSize ?? 0;
        byte[] scratch = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            await ReadPayloadAsync(scratch.AsMemory(0, size), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private void BeginPayload(int length)
    {
        if (_payloadsLeft == 0) throw new InvalidOperationException("no PageBatch payload is pending");
        int pageSize = Layout!.PageSize;
        if (length != pageSize)
            throw new ArgumentException($"a payload destination must be exactly one page ({pageSize} bytes), not {length}", "destination");
        AdvanceToFull();
    }

    /// <summary>The current payload's page inside the decompressed batch.</summary>
    private ReadOnlySpan<byte> DecompressedPayload()
    {
        int pageSize = Layout!.PageSize;
        return _decompressed.AsSpan(_payloadsRead * pageSize, pageSize);
    }

    /// <summary>What is being read when <c>what</c> is null: the current payload.</summary>
    private string CurrentPayload() =>
        $"PageBatch payload {_payloadsRead} (descriptor {_nextDescriptor}, page {_descriptors[_nextDescriptor].PageNumber})";

    private void EndPayload()
    {
        _payloadsLeft--;
        _payloadsRead++;
        _nextDescriptor++;
    }

    private int AdvanceToFull()
    {
        while (_descriptors[_nextDescriptor].Kind != PageKind.Full) _nextDescriptor++;
        return _nextDescriptor;
    }

    private void TakePending(FrameHeader header)
    {
        if (_pendingBody != header)
            throw new InvalidOperationException($"{header} is not the frame whose body is pending (read its header first, and each body once)");
        _pendingBody = null;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FillAsync(Memory<byte> buffer, string? what, bool frameBoundary, CancellationToken cancellationToken)
    {
        int got = 0;
        while (got < buffer.Length)
        {
            int n;
            try
            {
                n = await _stream.ReadAsync(buffer[got..], cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw ConnectionFailed(what ?? CurrentPayload(), e);
            }
            catch (System.Security.Authentication.AuthenticationException e)
            {
                throw TlsFailed(what ?? CurrentPayload(), e);
            }
            if (n == 0)
            {
                if (frameBoundary && got == 0)
                    throw new ProtocolException(ProtocolError.PeerClosed, "FrameHeader", null,
                        "the peer closed the connection (cleanly, between frames)");
                throw Truncated(got, buffer.Length, what ?? CurrentPayload());
            }
            got += n;
            BytesRead += n;
        }
    }

    private static ProtocolException Truncated(int got, int wanted, string what) =>
        new(ProtocolError.Truncated, what, got, what == "header"
            ? $"connection closed after {got} of {FrameHeader.Size} header bytes"
            : $"connection closed after {got} of {wanted} bytes of the {what}");

    /// <summary>A TLS stream that failed after its handshake (e.g. the peer refused this side's certificate: TLS 1.3 reports it on the first read).</summary>
    private static ProtocolException TlsFailed(string what, Exception e) =>
        new(ProtocolError.TlsFailed, what, null, $"TLS failed while reading the {what}: {e.Message}{(e.InnerException is { } i ? " — " + i.Message : "")}", e);

    private static ProtocolException ConnectionFailed(string what, IOException e) =>
        new(ProtocolError.ConnectionFailed, what, null, $"connection failed while reading the {what}: {e.Message}", e);
}
