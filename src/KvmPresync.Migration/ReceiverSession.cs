using System.Diagnostics;
using System.Net.Sockets;
using KvmPresync.Core;
using KvmPresync.Memory;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// One receive, as one state machine from the connection's first byte: every frame's header is read, passed to the
/// <see cref="ReceiverFrameGate"/> in the phase it arrives, and handled by the method for its kind. The handshake
/// runs through the same gate (<see cref="Handshake.AnswerHelloAsync"/>, <see cref="Handshake.VerifyAuthProofAsync"/>);
/// the destination is created only after the sender's proof verified. Any failure — protocol, transport, the
/// target's own, cancellation, or a bug — ends in <see cref="FailAsync"/>: an Abort with the cause (unless the
/// sender aborted), the target released, a failed <see cref="ReceiveResult"/>.
/// </summary>
internal sealed partial class ReceiverSession
{
    private static readonly TimeSpan AbortWriteTimeout = TimeSpan.FromSeconds(2);

    private readonly PreSharedKey _key;
    private readonly Func<MemoryLayout, (IMigrationTarget Target, IDisposable? Lease)> _createTarget;
    private readonly ParkedSessions? _store; // resumable sessions (HelloOptions.Resumable) only with a store
    private readonly string _connectionId;         // the service's session id, for the parked-session log
    private readonly CancellationTokenSource _takeover = new(); // cancelled when a newer connection of the same session takes over
    private readonly ReceiverOptions _options;
    private readonly CancellationToken _callerToken;
    private CancellationToken _cancellationToken; // the caller's, linked with the current step's deadline
    private readonly Socket? _connection;         // null: the stream-based session (fuzzing, properties)
    private FrameReader? _reader;   // set by OpenAsync: plaintext, or inside TLS
    private FrameWriter? _writer;
    private System.Net.Security.SslStream? _tls;
    private StreamGatherWriter? _tlsWriter;
    private readonly ReceiverFrameGate _gate = new();
    private CancellationTokenSource? _deadline; // the current step's deadline, linked to the caller's token and a takeover
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    private ReceiverPhase _arrivedIn = ReceiverPhase.AwaitHello; // the phase the frame being handled arrived in
    private AcceptedHello? _hello;
    private IMigrationTarget? _target;
    private ReceivedMemory? _memory;
    private IDisposable? _lease; // the target's memory reservation, released with it (or parked with it)
    private ReceiveResult? _outcome;
    private HandshakeResult? _session; // kept for SessionStart's proof
    private bool _deferredHandover; // the session negotiated HelloOptions.DeferredHandover
    private bool _treeDigest;       // the session negotiated HelloOptions.TreeDigest (1.3): FinalState carries the hash tree's root
    private IDeviceStateHandoverTarget? _awaitingDestination; // set until DestinationReady went out: one null check per frame otherwise
    private UInt128? _resumeId;        // the resumable session this connection serves (after SessionStart)
    private uint _parkGeneration;      // the generation to park under: the claimed one once the sender sent anything after SessionStart
    private uint _generation;
    private bool _holdsState;          // the memory is worth parking (resumed, or filled by this connection)
    private readonly StreamJoins? _joins; // protocol 1.3 MultiStream: sessions awaiting data streams (service mode only)
    private readonly bool _joinOnly;      // this connection may only join a session (receive --once serves one migration)
    private HandshakeResult? _negotiated; // the main connection's handshake (StreamSetup derives the join id from its nonces)
    private ReceiverStreams? _streams;    // main: its data streams after StreamSetup; data connection: the session it joined
    private int _streamIndex;             // 0 = the main connection; 1 … = a data stream
    private bool _memoryFrames;           // a PageBatch, RoundEnd or Launch arrived on this connection (StreamSetup comes before)
    private ulong? _liveRound;            // after Launch: the round of the last PageBatch (live rounds end with no RoundEnd)
    private bool _relinkDeadline;         // the step deadline must also watch the data streams (after StreamSetup)

    public ReceiverSession(Socket connection, PreSharedKey key, Func<MemoryLayout, (IMigrationTarget Target, IDisposable? Lease)> createTarget,
        ParkedSessions? store, string connectionId, ReceiverOptions options, CancellationToken cancellationToken, StreamJoins? joins = null, bool joinOnly = false)
    {
        _joins = joins;
        _joinOnly = joinOnly;
        _key = key;
        _createTarget = createTarget;
        _store = store;
        _connectionId = connectionId;
        _options = options;
        _callerToken = cancellationToken;
        _cancellationToken = cancellationToken;
        _connection = connection;
    }

    /// <summary>
    /// The same state machine over any byte stream (fuzzing and property tests feed it recorded or mutated sender
    /// streams from memory): frames are read from <paramref name="input"/>, answers written to <paramref name="output"/>.
    /// </summary>
    internal ReceiverSession(Stream input, IGatherWriter output, PreSharedKey key, Func<MemoryLayout, IMigrationTarget> createTarget,
        ReceiverOptions options, CancellationToken cancellationToken)
    {
        _key = key;
        _createTarget = layout => (createTarget(layout), null);
        _connectionId = "stream";
        _options = options;
        _callerToken = cancellationToken;
        _cancellationToken = cancellationToken;
        _reader = new FrameReader(input);
        _writer = new FrameWriter(output);
    }

    /// <summary>The destination once resumed (the caller owns it then); null otherwise.</summary>
    public IMigrationTarget? ResumedTarget => _outcome is { Resumed: true } ? _target : null;

    /// <summary>Runs until Resumed was sent, the receive failed or the session was parked. Never throws.</summary>
    public async Task<ReceiveResult> RunAsync()
    {
        ReceiveResult? result = null;
        try
        {
            await WithinDeadlineAsync(OpenAsync).ConfigureAwait(false);
            while (_outcome is null) await WithinDeadlineAsync(HandleNextFrameAsync).ConfigureAwait(false);
            return result = _outcome;
        }
        catch (Exception) when (_streamIndex > 0 && _streams!.Sealed)
        {
            // a data stream closed by its session (verified, failed or parked): the main connection's result is the outcome
            return result = new ReceiveResult { Resumed = false, Stream = _streamIndex, FailedIn = ReceiverPhase.DataStream, BytesReceived = _reader?.BytesRead ?? 0 };
        }
        catch (Exception e)
        {
            return result = await FailAsync(e).ConfigureAwait(false);
        }
        finally
        {
            if (_streamIndex > 0) _streams!.Ended(_streamIndex);
            if (_resumeId is { } id && result is not { Parked: true }) _store!.End(id, _takeover);
            _deadline?.Dispose();
            try { _tls?.Dispose(); } catch (Exception) { /* the connection is closed by the caller anyway */ }
            _tlsWriter?.Dispose();
        }
    }

    /// <summary>
    /// Sets up the reader and writer. The sender speaks first; its first bytes are peeked (not consumed) to tell a TLS
    /// ClientHello from a plaintext Hello, so a mismatch is refused with a message that says which side lacks TLS
    /// (a plaintext sender even gets a plaintext Abort saying so). With TLS the handshake completes (the sender's
    /// certificate verified) before the first frame is read.
    /// </summary>
    private async Task OpenAsync()
    {
        if (_connection is null) return; // the stream-based session: reader and writer are given
        var network = new NetworkStream(_connection, ownsSocket: false);
        TokenBucket? bucket = _options.LinkBitsPerSecond > 0
            ? new TokenBucket((long)_options.LinkBitsPerSecond, TokenBucket.DefaultBurstBytes((long)_options.LinkBitsPerSecond)) : null;
        TlsTransport.FirstBytes first = await TlsTransport.PeekAsync(_connection, _options.HandshakeTimeout, _cancellationToken).ConfigureAwait(false);
        if (_options.Tls is not { } tls)
        {
            _reader = new FrameReader(network);
            _writer = new FrameWriter(new SocketGatherWriter(_connection, bucket));
            if (first == TlsTransport.FirstBytes.TlsHandshake)
                throw new ProtocolException(ProtocolError.TlsFailed, "connection", null,
                    "the sender opened a TLS connection, but this receiver runs in plaintext (no TLS configured): start the receiver with " +
                    "--tls-cert, --tls-key and --tls-ca too, or the sender without them; connection closed");
            return;
        }
        if (first != TlsTransport.FirstBytes.TlsHandshake)
        {
            // Answer in the plaintext the sender speaks, so it learns why (it reads an Abort where it expects HelloAck).
            _reader = new FrameReader(network);
            _writer = new FrameWriter(new SocketGatherWriter(_connection, bucket));
            string what = first switch
            {
                TlsTransport.FirstBytes.PlaintextHello => "the sender connected in plaintext (a KvmPresync Hello arrived)",
                TlsTransport.FirstBytes.Nothing => "the sender closed the connection before the TLS handshake",
                _ => "the sender did not open a TLS handshake",
            };
            if (first == TlsTransport.FirstBytes.PlaintextHello) await DrainHelloAsync().ConfigureAwait(false);
            throw new ReceiverFailedException(AbortReason.ProtocolViolation,
                $"{what}, but this receiver requires TLS (mutual TLS 1.3): start the sender with --tls-cert, --tls-key and --tls-ca " +
                "(a certificate the receiver's CA signed, and the CA that signed the receiver's certificate); connection closed",
                new ProtocolException(ProtocolError.TlsFailed, "connection", first, "plaintext peer on a TLS receiver"));
        }
        // The bucket paces what this side writes (acks) as TLS records on the wire, below SslStream.
        Stream wire = bucket is null ? network : new RateLimitedStream(network, readBucket: null, writeBucket: bucket);
        _tls = await TlsTransport.AcceptAsync(wire, tls, _cancellationToken).ConfigureAwait(false);
        _reader = new FrameReader(_tls);
        _tlsWriter = new StreamGatherWriter(_tls, TlsTransport.RecordPayloadBytes);
        _writer = new FrameWriter(_tlsWriter);
    }

    /// <summary>Reads a plaintext sender's Hello off the socket (best effort) so closing does not reset the connection before our Abort arrives.</summary>
    private async Task DrainHelloAsync()
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cancellationToken);
            timeout.CancelAfter(AbortWriteTimeout);
            FrameHeader header = await _reader!.ReadHeaderAsync(timeout.Token).ConfigureAwait(false);
            await _reader!.ReadRawBodyAsync(header, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ProtocolException or IOException or OperationCanceledException or ArgumentException or InvalidOperationException)
        {
            // nothing more to do: the Abort is sent regardless
        }
    }

    /// <summary>
    /// Runs one step (opening the connection, or reading and handling one frame) within its phase's deadline: the whole
    /// handshake (TLS included) within <see cref="ReceiverOptions.HandshakeTimeout"/> of connecting, then each frame
    /// within <see cref="ReceiverOptions.IdleTimeout"/>. A missed deadline ends the receive with Abort(Timeout).
    /// </summary>
    private async Task WithinDeadlineAsync(Func<Task> step)
    {
        _arrivedIn = _gate.Phase;
        bool handshake = _arrivedIn is ReceiverPhase.AwaitHello or ReceiverPhase.AwaitAuthProof;
        TimeSpan allowed = handshake ? _options.HandshakeTimeout - _clock.Elapsed : _options.IdleTimeout;
        if (_relinkDeadline)
        {
            _relinkDeadline = false;
            _deadline?.Dispose();
            _deadline = CancellationTokenSource.CreateLinkedTokenSource(_callerToken, _takeover.Token, _streams!.Failed);
        }
        // One deadline source for the whole session, re-armed per step (no allocation per frame on the receive loop).
        CancellationTokenSource deadline = _deadline ??= CancellationTokenSource.CreateLinkedTokenSource(_callerToken, _takeover.Token);
        if (_arrivedIn == ReceiverPhase.DataStream) deadline.CancelAfter(Timeout.InfiniteTimeSpan); // a data stream idles with its session, whose main connection keeps the deadlines
        else deadline.CancelAfter(allowed > TimeSpan.Zero ? allowed : TimeSpan.Zero);
        _cancellationToken = deadline.Token;
        try
        {
            await step().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_streamIndex == 0 && _streams?.Failure is { } streamFailed && !_callerToken.IsCancellationRequested)
        {
            throw new IOException(streamFailed); // a transport failure of the session, as if the main connection had failed
        }
        catch (OperationCanceledException) when (_takeover.IsCancellationRequested && !_callerToken.IsCancellationRequested)
        {
            throw new IOException($"a new connection of session {ParkedSessions.Hex(_resumeId ?? 0)} took over (this one had not noticed the link drop yet)");
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !_callerToken.IsCancellationRequested)
        {
            throw new ReceiverFailedException(AbortReason.Timeout, handshake
                ? $"the handshake did not complete within {_options.HandshakeTimeout.TotalSeconds:0.#} s of connecting (phase {_arrivedIn}): a slow or stalled peer"
                : $"no complete frame within {_options.IdleTimeout.TotalSeconds:0.#} s in phase {_arrivedIn}: the sender stalled or the link is down");
        }
        finally
        {
            _cancellationToken = _callerToken;
        }
    }

    private async Task HandleNextFrameAsync()
    {
        FrameHeader header = await _reader!.ReadHeaderAsync(_cancellationToken).ConfigureAwait(false);
        _gate.Accept(header.Type);
        if (header.Type is FrameType.PageBatch or FrameType.RoundEnd or FrameType.Launch) _memoryFrames = true;
        if (_resumeId is not null && header.Type != FrameType.SessionStart && header.Type != FrameType.Abort)
        {
            _parkGeneration = _generation; // the sender got SessionState (and the hashes): it resumes from this generation next time
            _holdsState = true;
        }
        switch (header.Type)
        {
            case FrameType.SessionStart: await OnSessionStartAsync(header).ConfigureAwait(false); break;
            case FrameType.Hello when _joinOnly:
                throw new ReceiverFailedException(AbortReason.Busy, "this receiver serves one migration (receive --once) and is serving it: it only accepts that migration's data streams");
            case FrameType.Hello: await OnHelloAsync(header).ConfigureAwait(false); break;
            case FrameType.StreamSetup: await OnStreamSetupAsync(header).ConfigureAwait(false); break;
            case FrameType.StreamJoin: await OnStreamJoinAsync(header).ConfigureAwait(false); break;
            case FrameType.StreamMark: await OnStreamMarkAsync(header).ConfigureAwait(false); break;
            case FrameType.AuthProof: await OnAuthProofAsync(header).ConfigureAwait(false); break;
            case FrameType.PageBatch: await OnPageBatchAsync(header).ConfigureAwait(false); break;
            case FrameType.RoundEnd: await OnRoundEndAsync(header).ConfigureAwait(false); break;
            case FrameType.Launch: await OnLaunchAsync(header).ConfigureAwait(false); break;
            case FrameType.Ping: await OnPingAsync(header).ConfigureAwait(false); break;
            case FrameType.Pong: await _reader!.ReadBodyAsync<Pong>(header, _cancellationToken).ConfigureAwait(false); break;
            case FrameType.FinalState: await OnFinalStateAsync(header).ConfigureAwait(false); break;
            case FrameType.Abort: throw (await _reader!.ReadBodyAsync<Abort>(header, _cancellationToken).ConfigureAwait(false)).ToException();
            default: // the gate admits none of the sender-bound frames; this is a gate/session disagreement
                throw new InvalidOperationException($"the receiver's gate admitted a {header.Type} frame it has no handler for");
        }
        if (_awaitingDestination is { } handover && _gate.Phase == ReceiverPhase.Final)
            await SignalDestinationReadyAsync(handover).ConfigureAwait(false);
    }

    /// <summary>
    /// DeferredHandover sessions, after Launch: once the destination is ready for the device state (its QEMU started and
    /// held), say so — checked after every frame; the waiting sender pings to keep frames coming. A destination that
    /// failed to start fails the receive (the sender has not paused the guest yet).
    /// </summary>
    private async Task SignalDestinationReadyAsync(IDeviceStateHandoverTarget handover)
    {
        Task ready = handover.DestinationReady;
        if (!ready.IsCompleted) return;
        if (!ready.IsCompletedSuccessfully)
        {
            Exception why = ready.Exception?.GetBaseException() ?? new OperationCanceledException("the destination's start was cancelled");
            throw new ReceiverFailedException(AbortReason.ReceiverFailure, $"the destination could not be prepared for the device state: {why.Message}", why);
        }
        _awaitingDestination = null;
        await _writer!.WriteAsync(new DestinationReady(Now()), _cancellationToken).ConfigureAwait(false);
    }

    private async Task OnHelloAsync(FrameHeader header)
    {
        _hello = await Handshake.AnswerHelloAsync(_reader!, _writer!, header, new ReceiverHandshakeOptions
        {
            Version = _options.Version ?? ProtocolVersion.Current,
            SupportedOptions = HelloOptions.ZeroPages | HelloOptions.CompressedPages | (_store is not null ? HelloOptions.Resumable : HelloOptions.None)
                | (_options.DeviceStateHandover ? HelloOptions.DeferredHandover : HelloOptions.None)
                | (_joins is not null ? HelloOptions.MultiStream : HelloOptions.None) | HelloOptions.TreeDigest,
            HashAlgorithms = [PageHashAlgorithm.PageHasher],
            ValidateLayout = ValidateLayout,
            NonceSource = _options.HandshakeNonce,
        }, _key, _cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Authenticate, then (and only then) create the destination and attach its memory.</summary>
    private async Task OnAuthProofAsync(FrameHeader header)
    {
        AcceptedHello hello = _hello ?? throw new InvalidOperationException("the gate admitted AuthProof before a Hello was answered");
        HandshakeResult session = await Handshake.VerifyAuthProofAsync(_reader!, _writer!, header, hello, _key, _cancellationToken).ConfigureAwait(false);
        _negotiated = session;
        ReceivedMemory.WarmVerification(); // load and compile the digest path now, not in the downtime
        JitWarmup.Prepare(typeof(ReceiverSession), typeof(ReceivedMemory), typeof(ReceiverFrameGate)); // and the verify/resume steps' code
        AsyncBuilderWarmup.Prepare(typeof(ReceiverSession)); // and the builder code that starts each of its async steps (FinalState's handler: in the downtime)
        await FrameWarmup.SwitchoverAsync().ConfigureAwait(false); // and their frames' (generic over their body types)
        _deferredHandover = (session.Options & HelloOptions.DeferredHandover) != 0;
        _treeDigest = (session.Options & HelloOptions.TreeDigest) != 0;
        if (_options.DeviceStateHandover && !_deferredHandover)
            throw new ReceiverFailedException(AbortReason.ProtocolViolation,
                "this receiver serves libvirt destinations, whose device state QEMU moves after the memory: the sender must offer protocol 1.2's " +
                "DeferredHandover (use `kvmpresync libvirt presync`; a KVM guest's `run --presync-to` goes to a receiver started without --libvirt)");
        if ((session.Options & HelloOptions.Resumable) != 0)
        {
            _session = session; // the destination comes with SessionStart: new, or taken back from a parked session
            _gate.RequireSessionStart();
            return;
        }
        if (_deferredHandover)
            throw new ReceiverFailedException(AbortReason.ProtocolViolation,
                "a device-state handover needs a resumable session (its id names the destination's memory to libvirt's hook): the sender must offer Resumable");
        CreateTarget(session.Layout);
    }

    /// <summary>
    /// Resumable sessions: verify the SessionStart proof (bound to this connection's nonces), claim the session (taking it over
    /// from a connection of it still open here), answer SessionState, and for Resumed send every page's hash.
    /// </summary>
    private async Task OnSessionStartAsync(FrameHeader header)
    {
        SessionStart start = await _reader!.ReadBodyAsync<SessionStart>(header, _cancellationToken).ConfigureAwait(false);
        HandshakeResult session = _session ?? throw new InvalidOperationException("the gate admitted SessionStart before the handshake completed");
        byte[] expected = HandshakeTranscript.SessionProof(_key, session.Nonces, start.SessionId.Span, start.Generation);
        if (!System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(expected, start.Proof.Span))
            throw new AuthenticationFailedException("SessionStart.proof",
                "SessionStart: the proof did not verify — it holds a different pre-shared key, or the frame was replayed from another connection");
        UInt128 id = ParkedSessions.Key(start.SessionId.Span);
        ParkedSessions.Claim claim = await _store!.ClaimAsync(id, start.Generation, session.Layout, _takeover, _connectionId, _cancellationToken).ConfigureAwait(false);
        _resumeId = id;
        _generation = start.Generation;
        if (claim.State is { } parked)
        {
            (_target, _memory, _lease) = (parked.Target, parked.Memory, parked.Reservation);
            _awaitingDestination = _target as IDeviceStateHandoverTarget; // a reconnect comes during sync: DestinationReady is still to send
            _parkGeneration = start.Generation - 1; // until the sender shows it got the hashes
            _holdsState = true;
            long pages = _memory.PageCount;
            await _writer!.WriteAsync(new SessionState(SessionStatus.Resumed, (ulong)pages), _cancellationToken).ConfigureAwait(false);
            var chunk = new ulong[Math.Min(pages, WireLimits.MaxPageHashesPerFrame)];
            for (long first = 0; first < pages; first += chunk.Length)
            {
                int n = (int)Math.Min(chunk.Length, pages - first);
                for (int i = 0; i < n; i++) chunk[i] = _memory.PageHash(first + i);
                await _writer.WriteAsync(new PageHashes((ulong)first, chunk.AsMemory(0, n)), _cancellationToken).ConfigureAwait(false);
            }
            return;
        }
        CreateTarget(session.Layout);
        if (_target is IDeviceStateHandoverTarget handover)
        {
            handover.BindSession(Convert.ToHexStringLower(start.SessionId.Span));
            _awaitingDestination = handover;
        }
        await _writer!.WriteAsync(new SessionState(claim.Status, 0), _cancellationToken).ConfigureAwait(false);
    }

    private void CreateTarget(MemoryLayout layout)
    {
        try
        {
            (_target, _lease) = _createTarget(layout);
        }
        catch (ReceiverFailedException)
        {
            throw; // the factory's own refusal, with its reason (e.g. InsufficientMemory)
        }
        catch (Exception e)
        {
            throw new ReceiverFailedException(AbortReason.ReceiverFailure,
                $"could not create the destination for the announced layout ({layout}): {e.GetType().Name}: {e.Message}", e);
        }
        if (_target is null)
            throw new ReceiverFailedException(AbortReason.ReceiverFailure, "could not create the destination: the target factory returned null");
        if (_deferredHandover != _target is IDeviceStateHandoverTarget)
            throw new ReceiverFailedException(AbortReason.ReceiverFailure, _deferredHandover
                ? "the session negotiated DeferredHandover, but this receiver's destination takes the device state in FinalState"
                : "this receiver's destination takes the device state by its own path, but the session did not negotiate DeferredHandover");
        _memory = ReceivedMemory.Attach(layout, _target, _options.TrackWrites);
    }

    private async Task OnLaunchAsync(FrameHeader header)
    {
        Launch launch = await _reader!.ReadBodyAsync<Launch>(header, _cancellationToken).ConfigureAwait(false);
        _liveRound = launch.RoundId; // the first live round: the last sync round was caught up at its RoundEnd
    }

    private async Task OnPageBatchAsync(FrameHeader header)
    {
        PageBatch batch = await _reader!.ReadPageBatchAsync(header, _cancellationToken).ConfigureAwait(false);
        _streams?.CheckStripe(batch, _streamIndex);
        // After Launch no RoundEnd marks a round's end: the first batch of the next round does. Re-hash what the destination
        // wrote since the last catch-up when it pays, at a round's first batch and within a large round, while the link still
        // carries the launch, so the switchover re-hashes at most a slice of memory (a movie guest's launch writes ~3,500
        // pages: ~2.5 ms of hashing at the switchover, against ~1,200 paused).
        if (_liveRound is { } live)
        {
            Memory.CatchUpIfItPays(roundEnded: batch.RoundId != live);
            _liveRound = batch.RoundId;
        }
        await Memory.ApplyAsync(_reader, batch, _cancellationToken).ConfigureAwait(false);
        if (_streamIndex > 0) _streams!.Progress();
    }

    private async Task OnRoundEndAsync(FrameHeader header)
    {
        RoundEnd end = await _reader!.ReadBodyAsync<RoundEnd>(header, _cancellationToken).ConfigureAwait(false);
        (ulong bytes, ulong pages) = Memory.EndRound();
        await _writer!.WriteAsync(new Ack(end.RoundId, bytes, pages, end.SenderTimestampNs, Now()), _cancellationToken).ConfigureAwait(false);
        Memory.CatchUp();
    }

    private async Task OnPingAsync(FrameHeader header)
    {
        Ping ping = await _reader!.ReadBodyAsync<Ping>(header, _cancellationToken).ConfigureAwait(false);
        await _writer!.WriteAsync(new Pong(ping.TimestampNs), _cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Verify the digest, and only if it matches restore and resume the guest, then answer Resumed.</summary>
    private async Task OnFinalStateAsync(FrameHeader header)
    {
        FinalState final = await _reader!.ReadBodyAsync<FinalState>(header, _cancellationToken).ConfigureAwait(false);
        _arrivedIn = _gate.Phase; // Verifying: what fails from here fails the verification or the resume
        long t0 = _clock.ElapsedTicks;
        if (_streams is not null) await _streams.SealAsync().ConfigureAwait(false); // every data stream ended: nothing writes the memory any more
        Memory.Verify(final, _treeDigest);
        try
        {
            _target!.Resume(final.DeviceState.Span);
        }
        catch (Exception e)
        {
            throw new ReceiverFailedException(AbortReason.ReceiverFailure, $"could not resume the guest: {e.GetType().Name}: {e.Message}", e);
        }
        double resumeMs = (_clock.ElapsedTicks - t0) * 1000.0 / Stopwatch.Frequency;
        string? unconfirmed = null;
        try
        {
            await _writer!.WriteAsync(new Resumed(final.SenderTimestampNs, Now()), _cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The guest runs here already; the source may not learn it and resume its copy too.
            unconfirmed = $"the guest was resumed here, but the Resumed frame could not be sent ({e.Message}): " +
                "check that the source did not resume its copy as well";
        }
        _gate.MarkResumed();
        // verified: the guest's own writes from here on are none of the digest's business; the tracker closes on a thread
        // of its own at idle priority (closing only releases kernel objects, nothing to wait for or report)
        _ = Memory.StopTrackingWhenIdle();
        _lease?.Dispose(); // the memory is the running guest's now; the admission reservation ends with the session
        _lease = null;
        _outcome = new ReceiveResult
        {
            Resumed = true,
            Verified = true,
            Failure = unconfirmed,
            PagesApplied = Memory.PagesApplied,
            BytesReceived = _reader!.BytesRead,
            ResumeMs = resumeMs,
            PagesRehashedAtSwitchover = Memory.PagesRehashedAtVerify,
        };
    }

    /// <summary>The one way a receive fails: Abort with the cause (best effort), target released, result says where and why.</summary>
    private async Task<ReceiveResult> FailAsync(Exception error)
    {
        if (_tls is not null && _reader is { BytesRead: 0 } && error is ProtocolException { IsRetryable: true })
            // The sender checks this side's certificate after its TLS handshake returned, and then just closes.
            error = new ProtocolException(ProtocolError.TlsFailed, "connection", null,
                "the sender closed the TLS connection right after the handshake, before its Hello: it most likely refused this receiver's " +
                $"certificate — check that the sender's --tls-ca is the CA that signed this receiver's --tls-cert (or pins it) ({error.Message})", error);
        var failure = ReceiverFailure.From(error, _callerToken.IsCancellationRequested);
        ReceiverPhase failedIn = _arrivedIn;
        if (_streamIndex > 0) _streams!.StreamFailed(_streamIndex, failure.Text); // the session fails with its data stream
        else if (_streams is not null && await SealStreamsAsync().ConfigureAwait(false) is { } stuck)
        {
            _target = null; // a data stream may still write into it: leaked rather than released under it
            _lease = null;
            failure = failure with { Text = failure.Text + $" ({stuck}; the destination was not released)" };
        }
        if (TryPark(error, failure) is { } parked) return parked;
        bool sent = failure.Abort is { } reason && await TrySendAbortAsync(reason, failure.AbortMessage).ConfigureAwait(false);
        _gate.MarkAborted();
        string text = failure.Text;
        if (ReleaseTarget() is { } releaseError) text += $" (releasing the destination also failed: {releaseError})";
        return new ReceiveResult
        {
            Resumed = false,
            Failure = text,
            FailedIn = failedIn,
            AbortSent = sent ? failure.Abort : null,
            AbortReceived = error switch
            {
                AuthenticationFailedException { FromPeerAbort: true } => AbortReason.AuthenticationFailed,
                ProtocolException { FromPeerAbort: true } p => p.AbortReason,
                _ => null,
            },
            Cancelled = failure.Cancelled,
            Stream = _streamIndex > 0 ? _streamIndex : null,
            PagesApplied = _memory?.PagesApplied ?? 0,
            BytesReceived = _reader?.BytesRead ?? 0,
        };
    }

    /// <summary>
    /// A resumable session whose connection failed at the transport level (peer gone, I/O error, idle timeout, taken over)
    /// before Launch keeps its destination, memory and hashes for the sender's reconnection: no Abort, nothing released.
    /// A peer's Abort, a protocol violation, a failed proof, a digest mismatch or a cancelled receiver do not park.
    /// </summary>
    private ReceiveResult? TryPark(Exception error, ReceiverFailure failure)
    {
        bool transport = error is IOException or SocketException or ProtocolException { FromPeerAbort: false, IsRetryable: true }
            or ReceiverFailedException { Reason: AbortReason.Timeout };
        if (_store is null || _resumeId is not { } id || !_holdsState || _target is null || _memory is null || !transport
            || _callerToken.IsCancellationRequested || _arrivedIn is not (ReceiverPhase.Syncing or ReceiverPhase.AwaitSessionStart))
            return null;
        _gate.MarkAborted();
        bool parked = _store.Park(id, _takeover, _parkGeneration, new ParkedSessions.Parked(_target, _memory, _lease), _connectionId, failure.Text);
        _target = null; // parked, or released by the store
        _lease = null;
        return new ReceiveResult
        {
            Resumed = false,
            Parked = parked,
            Failure = parked
                ? $"the connection failed during sync ({error.Message}); session {ParkedSessions.Hex(id)} parked for {_store.KeepFor.TotalSeconds:0} s awaiting the sender's reconnection"
                : failure.Text,
            FailedIn = _arrivedIn,
            PagesApplied = _memory.PagesApplied,
            BytesReceived = _reader?.BytesRead ?? 0,
        };
    }

    /// <summary>Ends the data streams before the memory is parked or released; returns why that failed, if it did.</summary>
    private async Task<string?> SealStreamsAsync()
    {
        try
        {
            await _streams!.SealAsync().ConfigureAwait(false);
            return null;
        }
        catch (InvalidOperationException e)
        {
            return e.Message;
        }
    }

    private async Task<bool> TrySendAbortAsync(AbortReason reason, string message)
    {
        if (_writer is null) return false; // no channel to the sender (e.g. its TLS handshake failed)
        try
        {
            using var timeout = new CancellationTokenSource(AbortWriteTimeout); // not the caller's token: it may be what stopped us
            await _writer!.WriteAsync(new Abort(reason, message), timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is ProtocolException or IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            return false; // the peer is gone; closing the connection is all that is left
        }
    }

    /// <summary>Disposes a target that was not resumed; returns why that failed, if it did.</summary>
    private string? ReleaseTarget()
    {
        IMigrationTarget? target = _target;
        _target = null;
        _memory?.StopTracking();
        try
        {
            try { target?.Dispose(); }
            finally { _lease?.Dispose(); _lease = null; }
            return null;
        }
        catch (Exception e)
        {
            return $"{e.GetType().Name}: {e.Message}";
        }
    }

    private ReceivedMemory Memory => _memory ?? throw new InvalidOperationException("the gate admitted a memory frame before the destination was created");

    private string? ValidateLayout(MemoryLayout layout)
    {
        if ((long)layout.TotalBytes > _options.MaxMemoryBytes)
            return $"the announced guest memory ({layout.TotalBytes} bytes) exceeds this receiver's limit ({_options.MaxMemoryBytes} bytes)";
        if (layout.PageSize != GuestMemory.HostPageSize)
            return $"page size {layout.PageSize} differs from this host's {GuestMemory.HostPageSize}";
        return null;
    }

    private ulong Now() => (ulong)(_clock.ElapsedTicks * (1e9 / Stopwatch.Frequency));
}
