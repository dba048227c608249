using System.Net.Sockets;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// The sender's side of one connection: the frame reader and writer over the chosen transport (gather or
/// MSG_ZEROCOPY, rate-limited or not), and the loop that reads what the receiver sends back (round acks, Resumed,
/// Abort). Owns the zero-copy writer; the socket stays the caller's.
/// </summary>
internal sealed class SenderChannel : IDisposable
{
    private readonly Socket _socket;
    private readonly Func<ulong> _now;
    private readonly object _ackLock = new();
    private (ulong Round, TaskCompletionSource<RoundAck> Done)? _awaitedAck;
    private readonly TaskCompletionSource<Resumed> _resumed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<DestinationReady> _destinationReady = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _ackLoop = Task.CompletedTask;
    private CancellationTokenSource? _link; // the run's token, also cancelled when the liveness watchdog declares the link dead
    private long _lastHeardTicks = System.Diagnostics.Stopwatch.GetTimestamp();

    private readonly Stream? _tls;
    private readonly IDisposable? _streamWriter;

    private SenderChannel(Socket socket, Func<ulong> nowNs, FrameReader reader, FrameWriter writer, ZeroCopySocketWriter? zeroCopy,
        Stream? tls, IDisposable? streamWriter)
    {
        _socket = socket;
        _now = nowNs;
        Reader = reader;
        Writer = writer;
        ZeroCopy = zeroCopy;
        _tls = tls;
        _streamWriter = streamWriter;
    }

    /// <summary>
    /// The channel over <paramref name="socket"/>: plaintext (gather or MSG_ZEROCOPY writes on the socket), or with
    /// <see cref="PresyncOptions.Tls"/> a TLS 1.3 channel established first (throws <see cref="ProtocolException"/>
    /// with <see cref="ProtocolError.TlsFailed"/> when it cannot be).
    /// </summary>
    /// <param name="sharedBucket">A data stream (protocol 1.3): the main connection's <see cref="Bucket"/>, so all streams together keep the rate.</param>
    public static async Task<SenderChannel> OpenAsync(Socket socket, PresyncOptions options, Func<ulong> nowNs, CancellationToken ct, TokenBucket? sharedBucket = null)
    {
        double limit = options.RateLimitBitsPerSecond ?? options.Engine.LinkBitsPerSecond;
        TokenBucket? bucket = sharedBucket ?? (limit > 0 && double.IsFinite(limit)
            ? new TokenBucket((long)limit, TokenBucket.DefaultBurstBytes((long)limit))
            : null);
        if (options.Tls is { } tls)
        {
            // The token bucket paces the TLS records on the wire (record overhead included), below SslStream.
            Stream wire = new NetworkStream(socket, ownsSocket: false);
            if (bucket is not null) wire = new RateLimitedStream(wire, readBucket: null, writeBucket: bucket);
            System.Net.Security.SslStream ssl = await TlsTransport.ConnectAsync(wire, tls, ct).ConfigureAwait(false);
            var gather = new StreamGatherWriter(ssl, TlsTransport.RecordPayloadBytes);
            return new SenderChannel(socket, nowNs, new FrameReader(ssl), new FrameWriter(gather), null, ssl, gather) { Bucket = bucket };
        }
        ZeroCopySocketWriter? zeroCopy = options.ZeroCopy
            ? new ZeroCopySocketWriter(socket, new ZeroCopyWriterOptions { ZeroCopy = true, RateLimit = bucket })
            : null;
        return new SenderChannel(socket, nowNs, new FrameReader(new NetworkStream(socket, ownsSocket: false)),
            new FrameWriter(zeroCopy is not null ? zeroCopy : new SocketGatherWriter(socket, bucket)), zeroCopy, null, null) { Bucket = bucket };
    }

    /// <summary>The rate limit this channel's writes take their bytes from (null: none); shared with the data streams.</summary>
    public TokenBucket? Bucket { get; private init; }

    /// <summary>True when the connection runs inside TLS.</summary>
    public bool Encrypted => _tls is not null;

    public FrameReader Reader { get; }

    public FrameWriter Writer { get; }

    public ZeroCopySocketWriter? ZeroCopy { get; }

    /// <summary>Completes when the receiver confirms the guest runs; faults with the receiver's Abort or a lost connection.</summary>
    public Task<Resumed> Resumed => _resumed.Task;

    /// <summary>The receiver's DestinationReady (protocol 1.2, <see cref="HelloOptions.DeferredHandover"/> sessions only).</summary>
    public Task<DestinationReady> DestinationReady => _destinationReady.Task;

    /// <summary>Set when the session negotiated <see cref="HelloOptions.DeferredHandover"/>: DestinationReady is then expected once.</summary>
    public bool ExpectsDestinationReady { get; set; }

    /// <summary>An ack of a round: what the receiver applied and the round trip it took.</summary>
    public readonly record struct RoundAck(Ack Ack, double RttMs);

    /// <summary>Starts reading the receiver's frames (after the handshake).</summary>
    public void StartReading(CancellationToken ct) => StartReading(ct, null);

    /// <summary>
    /// Starts reading the receiver's frames; with <paramref name="liveness"/>, a watchdog declares the link dead when
    /// nothing arrived from the receiver for that long while <see cref="Watching"/> (sync rounds: every round is acked):
    /// it cancels <see cref="LinkToken"/>, which stops whatever the sender was waiting for (a write into a dead link included).
    /// </summary>
    public void StartReading(CancellationToken ct, TimeSpan? liveness)
    {
        WarmCompletions();
        _link = CancellationTokenSource.CreateLinkedTokenSource(ct);
        _ackLoop = ReadAsync(_link.Token);
        if (liveness is { } timeout) _ = WatchAsync(timeout, _link);
    }

    /// <summary>
    /// Completes a throwaway source of each result the reader hands over once (Resumed, DestinationReady): the completion code is
    /// generic over these structs, so the runtime JIT-compiles it at its first use — for Resumed inside the downtime (measured
    /// ~0.25 ms between the reader having Resumed's body and the result being set).
    /// </summary>
    internal static void WarmCompletions()
    {
        new TaskCompletionSource<Resumed>(TaskCreationOptions.RunContinuationsAsynchronously).TrySetResult(default);
        new TaskCompletionSource<DestinationReady>(TaskCreationOptions.RunContinuationsAsynchronously).TrySetResult(default);
    }

    /// <summary>The run's token, cancelled as well when the liveness watchdog finds the link dead (<see cref="LinkLost"/>).</summary>
    public CancellationToken LinkToken => _link?.Token ?? CancellationToken.None;

    /// <summary>Why the watchdog declared the link dead; null while it has not.</summary>
    public string? LinkLost { get; private set; }

    /// <summary>The watchdog applies only while this is set (sync rounds, where every round is answered).</summary>
    public bool Watching { get; set; }

    private async Task WatchAsync(TimeSpan timeout, CancellationTokenSource link)
    {
        var tick = TimeSpan.FromMilliseconds(Math.Clamp(timeout.TotalMilliseconds / 4, 50, 250));
        try
        {
            while (!link.IsCancellationRequested)
            {
                await Task.Delay(tick, link.Token).ConfigureAwait(false);
                if (!Watching)
                {
                    Interlocked.Exchange(ref _lastHeardTicks, System.Diagnostics.Stopwatch.GetTimestamp());
                    continue;
                }
                TimeSpan silent = System.Diagnostics.Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastHeardTicks));
                if (silent < timeout) continue;
                LinkLost = $"nothing from the receiver for {silent.TotalSeconds:0.0} s (liveness timeout {timeout.TotalSeconds:0.#} s): the link is down or the receiver is gone";
                link.Cancel();
                return;
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>The ack of <paramref name="round"/> once it arrives (earlier expectations are dropped).</summary>
    public Task<RoundAck> ExpectAck(ulong round)
    {
        var done = new TaskCompletionSource<RoundAck>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_ackLock) _awaitedAck = (round, done);
        return done.Task;
    }

    /// <summary>Waits for the ack of a round for at most <paramref name="timeout"/>, or until <paramref name="orUntil"/> completes; null when it did not come.</summary>
    public async Task<RoundAck?> WaitAckAsync(Task<RoundAck> ack, TimeSpan timeout, CancellationToken ct, Task? orUntil = null)
    {
        await Task.WhenAny(ack, _ackLoop, Task.Delay(timeout, ct), orUntil ?? ack).ConfigureAwait(false);
        return ack.IsCompletedSuccessfully ? ack.Result : null;
    }

    /// <summary>Throws the receiver's Abort, or an IOException when it closed the connection.</summary>
    public void ThrowIfPeerEnded()
    {
        if (_ackLoop.IsFaulted) _ackLoop.GetAwaiter().GetResult();
        if (_ackLoop.IsCompleted && !_resumed.Task.IsCompleted)
            throw new IOException("the receiver closed the connection");
    }

    /// <summary>
    /// Completes when the reader has ended — right after Resumed, or with the receiver's Abort or a lost connection — or
    /// when <paramref name="timeout"/> has passed; <see cref="ThrowUnlessResumed"/> then says which. Deliberately not an
    /// async method of its own: the caller awaits it in its long-running state machine, whose resumption is compiled since
    /// the sync rounds, while a once-per-migration async method would be JIT-compiled the moment Resumed arrives — inside
    /// the downtime (measured ~0.8 ms of the destination segment).
    /// </summary>
    public Task ReaderEndedOrTimeout(TimeSpan timeout, CancellationToken ct) => Task.WhenAny(_ackLoop, Task.Delay(timeout, ct));

    /// <summary>After <see cref="ReaderEndedOrTimeout"/>: returns if the receiver confirmed the guest runs, else throws why not.</summary>
    public void ThrowUnlessResumed(TimeSpan timeout)
    {
        if (_resumed.Task.IsCompletedSuccessfully) return;
        if (_ackLoop.IsCompleted) _ackLoop.GetAwaiter().GetResult(); // throws the peer's reason
        throw _ackLoop.IsCompleted
            ? new IOException("the receiver closed the connection without confirming the guest runs")
            : new TimeoutException($"the destination did not confirm it runs within {timeout.TotalSeconds:0.#} s");
    }

    /// <summary>Best effort: tells the receiver why the sender stops (the connection may already be gone).</summary>
    public async Task AbortAsync(AbortReason reason, string message)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await Writer.WriteAsync(new Abort(reason, message), cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ProtocolException or IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // the peer is gone or the writer is mid-frame; closing the connection is all that is left
        }
    }

    /// <summary>Shuts the connection down and waits for the reader to end.</summary>
    public async Task CloseAsync()
    {
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        try { await _ackLoop.ConfigureAwait(false); } catch { /* reported where it mattered */ }
    }

    private async Task ReadAsync(CancellationToken ct)
    {
        try
        {
            while (true)
            {
                FrameHeader header = await Reader.ReadHeaderAsync(ct).ConfigureAwait(false);
                Interlocked.Exchange(ref _lastHeardTicks, System.Diagnostics.Stopwatch.GetTimestamp());
                switch (header.Type)
                {
                    case FrameType.Ack:
                        Ack ack = await Reader.ReadBodyAsync<Ack>(header, ct).ConfigureAwait(false);
                        double rttMs = (_now() - ack.SenderTimestampEchoNs) / 1e6;
                        lock (_ackLock)
                            if (_awaitedAck is { } awaited && awaited.Round == ack.RoundId) awaited.Done.TrySetResult(new RoundAck(ack, rttMs));
                        break;
                    case FrameType.Pong:
                        await Reader.ReadBodyAsync<Pong>(header, ct).ConfigureAwait(false); // keepalive answered
                        break;
                    case FrameType.DestinationReady when ExpectsDestinationReady && !_destinationReady.Task.IsCompleted:
                        _destinationReady.TrySetResult(await Reader.ReadBodyAsync<DestinationReady>(header, ct).ConfigureAwait(false));
                        break;
                    case FrameType.Resumed:
                        _resumed.TrySetResult(await Reader.ReadBodyAsync<Resumed>(header, ct).ConfigureAwait(false));
                        return;
                    case FrameType.Abort:
                        throw (await Reader.ReadBodyAsync<Abort>(header, ct).ConfigureAwait(false)).ToException();
                    default:
                        throw new ProtocolException(ProtocolError.UnexpectedFrame, "frame type", header.Type.ToString(),
                            $"the receiver sent {header.Type} while the sender expects Ack, Pong, Resumed or Abort" +
                            (header.Type == FrameType.DestinationReady ? " (DestinationReady: not negotiated, or sent twice)" : ""));
                }
            }
        }
        catch (Exception e)
        {
            _resumed.TrySetException(e);
            _destinationReady.TrySetException(e);
            throw;
        }
    }

    public void Dispose()
    {
        ZeroCopy?.Dispose();
        _tls?.Dispose();
        _streamWriter?.Dispose();
        _link?.Dispose();
    }
}
