using System.Diagnostics;
using System.Net.Sockets;
using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>How a receiver guards itself.</summary>
public sealed record ReceiverOptions
{
    /// <summary>Largest guest memory a sender may announce.</summary>
    public long MaxMemoryBytes { get; init; } = 64L << 30;

    /// <summary>Rate limit on what the receiver sends (acks), bits/s; 0 = none.</summary>
    public double LinkBitsPerSecond { get; init; }

    /// <summary>A connection silent for this long is dropped (the guest is not resumed).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>How a receive ended.</summary>
public sealed record ReceiveResult
{
    public required bool Resumed { get; init; }
    public bool Verified { get; init; }
    public string? Failure { get; init; }
    public long PagesApplied { get; init; }
    public long BytesReceived { get; init; }
    /// <summary>FinalState received → Resumed sent (verify + restore + start).</summary>
    public double ResumeMs { get; init; }
}

/// <summary>
/// The destination side of one migration connection, as an explicit state machine (<see cref="ReceiverFrameGate"/>):
/// authenticate the peer before anything is written → validate every header → receive each payload straight into
/// destination guest memory, hashing it as it lands → ack each round → on FinalState compare the memory digest
/// and only if it matches restore the state and resume the guest, then answer Resumed.
/// A malformed or hostile stream gets an Abort with the cause and a closed connection; the guest is not resumed.
/// </summary>
public static class PresyncReceiver
{
    public static async Task<ReceiveResult> RunAsync(Socket connection, PreSharedKey key, Func<MemoryLayout, IMigrationTarget> createTarget,
        ReceiverOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(createTarget);
        options ??= new ReceiverOptions();
        var stream = new NetworkStream(connection, ownsSocket: false) { ReadTimeout = (int)options.IdleTimeout.TotalMilliseconds };
        var reader = new FrameReader(stream);
        TokenBucket? bucket = options.LinkBitsPerSecond > 0
            ? new TokenBucket((long)options.LinkBitsPerSecond, TokenBucket.DefaultBurstBytes((long)options.LinkBitsPerSecond)) : null;
        var writer = new FrameWriter(new SocketGatherWriter(connection, bucket));
        var clock = Stopwatch.StartNew();
        IMigrationTarget? target = null;
        bool resumed = false;
        long pages = 0;
        try
        {
            HandshakeResult session = await Handshake.RunReceiverAsync(reader, writer, new ReceiverHandshakeOptions
            {
                SupportedOptions = HelloOptions.ZeroPages,
                HashAlgorithms = [PageHashAlgorithm.PageHasher],
                ValidateLayout = layout => ValidateLayout(layout, options),
            }, key, cancellationToken).ConfigureAwait(false);

            WarmVerification(); // load and compile the digest path now, not in the downtime
            target = createTarget(session.Layout);
            GuestMemoryMap memory = target.Memory;
            if (MigrationLayout.Mismatch(session.Layout, memory) is { } mismatch)
                throw new InvalidOperationException($"the migration target does not match the announced layout: {mismatch}");
            var digest = new MemoryDigest(memory.PageCount, memory.PageSize);
            ulong zeroHash = PageHasher.ZeroPageHash(memory.PageSize);
            for (long p = 0; p < memory.PageCount; p++) digest.SetPage(p, zeroHash); // fresh memory is all zero
            var gate = ReceiverFrameGate.AfterHandshake();
            long roundBytes = 0, roundPages = 0;

            while (true)
            {
                FrameHeader header = await reader.ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
                gate.Accept(header.Type);
                switch (header.Type)
                {
                    case FrameType.PageBatch:
                    {
                        PageBatch batch = await reader.ReadPageBatchAsync(header, cancellationToken).ConfigureAwait(false);
                        for (int i = 0; i < batch.Descriptors.Length; i++)
                        {
                            PageDescriptor d = batch.Descriptors.Span[i];
                            long index = session.Layout.Locate(d.PageNumber).LinearIndex;
                            Memory<byte> page = memory.PageMemory(index);
                            switch (d.Kind)
                            {
                                case PageKind.Full:
                                    await reader.ReadPayloadAsync(page, cancellationToken).ConfigureAwait(false);
                                    digest.SetPage(index, PageHasher.Hash(page.Span, out _));
                                    roundBytes += memory.PageSize;
                                    break;
                                case PageKind.Zero:
                                    page.Span.Clear();
                                    digest.SetPage(index, zeroHash);
                                    break;
                                default:
                                    throw new ProtocolException(ProtocolError.UnknownPageKind, $"PageBatch descriptor {i}.kind", d.Kind,
                                        $"PageBatch descriptor {i}: page kind {d.Kind} was not negotiated");
                            }
                            roundPages++;
                        }
                        pages += batch.Descriptors.Length;
                        break;
                    }
                    case FrameType.RoundEnd:
                    {
                        RoundEnd end = await reader.ReadBodyAsync<RoundEnd>(header, cancellationToken).ConfigureAwait(false);
                        await writer.WriteAsync(new Ack(end.RoundId, (ulong)roundBytes, (ulong)roundPages, end.SenderTimestampNs, Now(clock)), cancellationToken).ConfigureAwait(false);
                        roundBytes = roundPages = 0;
                        break;
                    }
                    case FrameType.Launch:
                        await reader.ReadBodyAsync<Launch>(header, cancellationToken).ConfigureAwait(false);
                        break;
                    case FrameType.Ping:
                    {
                        Ping ping = await reader.ReadBodyAsync<Ping>(header, cancellationToken).ConfigureAwait(false);
                        await writer.WriteAsync(new Pong(ping.TimestampNs), cancellationToken).ConfigureAwait(false);
                        break;
                    }
                    case FrameType.Pong:
                        await reader.ReadBodyAsync<Pong>(header, cancellationToken).ConfigureAwait(false);
                        break;
                    case FrameType.Abort:
                        throw (await reader.ReadBodyAsync<Abort>(header, cancellationToken).ConfigureAwait(false)).ToException();
                    case FrameType.FinalState:
                    {
                        FinalState final = await reader.ReadBodyAsync<FinalState>(header, cancellationToken).ConfigureAwait(false);
                        long t0 = clock.ElapsedTicks;
                        if (final.PageCount != (ulong)memory.PageCount)
                            throw new ProtocolException(ProtocolError.BodyLengthMismatch, "FinalState.pageCount", final.PageCount,
                                $"FinalState describes {final.PageCount} pages; the layout has {memory.PageCount}");
                        byte[] ours = digest.Compute();
                        if (!MemoryDigest.Matches(ours, final.MemoryDigest.Span))
                        {
                            await SendAbortAsync(writer, AbortReason.DigestMismatch,
                                "memory digest mismatch: the destination's memory differs from the source's; the destination guest was not resumed").ConfigureAwait(false);
                            gate.MarkAborted();
                            return Failed("memory digest mismatch: the guest was not resumed", pages, reader);
                        }
                        try
                        {
                            target.Resume(final.DeviceState.Span);
                        }
                        catch (Exception e)
                        {
                            await SendAbortAsync(writer, AbortReason.ReceiverFailure, $"could not resume the guest: {e.Message}").ConfigureAwait(false);
                            gate.MarkAborted();
                            return Failed($"could not resume the guest: {e.Message}", pages, reader);
                        }
                        resumed = true;
                        await writer.WriteAsync(new Resumed(final.SenderTimestampNs, Now(clock)), cancellationToken).ConfigureAwait(false);
                        gate.MarkResumed();
                        return new ReceiveResult
                        {
                            Resumed = true,
                            Verified = true,
                            PagesApplied = pages,
                            BytesReceived = reader.BytesRead,
                            ResumeMs = (clock.ElapsedTicks - t0) * 1000.0 / Stopwatch.Frequency,
                        };
                    }
                    default:
                        throw new ProtocolException(ProtocolError.UnexpectedFrame, "FrameHeader.type", header.Type,
                            $"a {header.Type} frame is not expected by the receiver");
                }
            }
        }
        catch (Exception e) when (!resumed && e is ProtocolException or IOException or SocketException or InvalidOperationException or OperationCanceledException)
        {
            if (e is ProtocolException { FromPeerAbort: false } p && p is not AuthenticationFailedException)
                await SendAbortAsync(writer, p.AbortReason, p.Message).ConfigureAwait(false);
            return Failed(e switch
            {
                ProtocolException { FromPeerAbort: true } => $"the sender aborted: {e.Message}",
                ProtocolException => $"rejected the stream: {e.Message}",
                _ => $"connection failed: {e.Message}",
            } + "; the guest was not resumed", pages, reader);
        }
        finally
        {
            if (!resumed) target?.Dispose();
            try { connection.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        }
    }

    private static void WarmVerification()
    {
        var warm = new MemoryDigest(1, GuestMemory.HostPageSize);
        warm.SetPage(0, PageHasher.ZeroPageHash(GuestMemory.HostPageSize));
        _ = MemoryDigest.Matches(warm.Compute(), new byte[MemoryDigest.Size]);
    }

    private static string? ValidateLayout(MemoryLayout layout, ReceiverOptions options)
    {
        if ((long)layout.TotalBytes > options.MaxMemoryBytes)
            return $"the announced guest memory ({layout.TotalBytes} bytes) exceeds this receiver's limit ({options.MaxMemoryBytes} bytes)";
        if (layout.PageSize != GuestMemory.HostPageSize)
            return $"page size {layout.PageSize} differs from this host's {GuestMemory.HostPageSize}";
        return null;
    }

    private static async Task SendAbortAsync(FrameWriter writer, AbortReason reason, string message)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await writer.WriteAsync(new Abort(reason == AbortReason.Invalid ? AbortReason.ProtocolViolation : reason, message), cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ProtocolException or IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // the peer is gone; closing the connection is all that is left
        }
    }

    private static ReceiveResult Failed(string why, long pages, FrameReader reader) =>
        new() { Resumed = false, Failure = why, PagesApplied = pages, BytesReceived = reader.BytesRead };

    private static ulong Now(Stopwatch clock) => (ulong)(clock.ElapsedTicks * (1e9 / Stopwatch.Frequency));
}
