using System.Diagnostics;
using System.Net.Sockets;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Migration.Compression;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// The source side of a pre-synchronized migration over one authenticated connection, as explicit phases
/// (<see cref="SenderPhase"/>):
/// <code>
///  Handshake ─▶ Sync (SyncPhase: harvest → engine → PageBatch… RoundEnd ◀ Ack) ─(Launch())─▶ FinalLive (FinalLivePhase:
///  live rounds until the convergence policy pauses) ─▶ Paused (PausedPhase: last delta, digest, FinalState)
///  ─▶ AwaitingResumed ◀ Resumed ─▶ Done: stop source          any failure before Resumed: resume the source
/// </code>
/// Page payloads go to the transport as spans into guest memory (no managed copy). A page read while the guest
/// runs may be torn; it is dirty again and resent, and only the paused final phase is verified.
/// </summary>
public sealed class PresyncSender
{
    /// <summary>The guest's work rate is also sampled over this first part of the sync period (see <see cref="MigrationResult.ProgressRateFirstSeconds"/>).</summary>
    public static readonly TimeSpan ProgressSampleWindow = TimeSpan.FromSeconds(5);

    private readonly IMigrationSource _source;
    private readonly Socket _socket;
    private readonly PreSharedKey _key;
    private readonly PresyncOptions _options;
    private readonly TaskCompletionSource _launch = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _launchRequestedTicks;
    private readonly byte[] _sessionId = SenderResume.NewSessionId();
    private readonly List<Socket> _ownedSockets = [];
    private readonly Func<int, CancellationToken, Task<Socket>> _connectStream; // data streams (protocol 1.3) go where the main connection went

    public PresyncSender(IMigrationSource source, Socket connected, PreSharedKey key, PresyncOptions? options = null)
    {
        _source = source ?? throw new ArgumentNullException(nameof(source));
        _socket = connected ?? throw new ArgumentNullException(nameof(connected));
        _key = key ?? throw new ArgumentNullException(nameof(key));
        _options = options ?? new PresyncOptions();
        _options.Validate();
        _connectStream = _options.Streams > 1 ? SenderStreams.SameAddressAs(connected) : (_, _) => throw new InvalidOperationException("one stream");
        if (CompressionSetup.Offered(_options)) _ = PageCompression.Warm(); // the codecs' JIT in the background, from now
        if (_source.Memory.PageSize != _source.DirtyLog.PageSize || _source.Memory.PageCount != _source.DirtyLog.PageCount)
            throw new ArgumentException("the source's dirty log and memory disagree on the page layout", nameof(source));
    }

    /// <summary>
    /// "If launched now": the switchover estimated from the last sync round, with what the guest dirtied since (null before
    /// the first sync round). Any thread may read it; each sync round also carries its estimate (<see cref="RoundRecord.Readiness"/>).
    /// </summary>
    public ReadinessEstimate? Readiness => Volatile.Read(ref _run)?.ReadinessNow();

    private SenderRun? _run;
    private volatile bool _sendingAtLaunch; // a sync round was sending when launch was requested (the estimate then adds its end)

    /// <summary>
    /// Raised after every round (sync, final live, paused), on the sender's thread: a handler runs inside the migration
    /// and must return at once. <see cref="ReadRoundsAsync"/> is the same stream for a reader that may be slow.
    /// </summary>
    public event Action<RoundRecord>? RoundCompleted;

    private readonly RoundFeed _roundFeed = new();

    /// <summary>Rounds a <see cref="ReadRoundsAsync"/> reader may fall behind by before its oldest unread round is dropped.</summary>
    public const int RoundStreamCapacity = 1024;

    /// <summary>
    /// Every round (sync, final live, paused) from this call until the run ends, as an asynchronous stream: the stream
    /// completes when <see cref="RunAsync"/> returns or throws (at once when it already has). Each call is one reader with
    /// its own buffer of <see cref="RoundStreamCapacity"/> rounds, filled from the moment of the call (call it before
    /// <see cref="RunAsync"/> to see every round); a reader that falls further behind loses its oldest unread rounds —
    /// a reader never slows the migration. Enumerate the result once; cancelling <paramref name="cancellationToken"/> ends
    /// that reader's enumeration (with <see cref="OperationCanceledException"/>), not the migration.
    /// </summary>
    public IAsyncEnumerable<RoundRecord> ReadRoundsAsync(CancellationToken cancellationToken = default)
    {
        System.Threading.Channels.Channel<RoundRecord> channel = _roundFeed.Subscribe(RoundStreamCapacity);
        return Read(channel, cancellationToken);

        async IAsyncEnumerable<RoundRecord> Read(System.Threading.Channels.Channel<RoundRecord> channel,
            [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            try
            {
                await foreach (RoundRecord round in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                    yield return round;
            }
            finally
            {
                _roundFeed.Unsubscribe(channel);
            }
        }
    }

    /// <summary>Requests the switchover. Safe to call from any thread, any number of times.</summary>
    public void Launch()
    {
        bool sending = Volatile.Read(ref _run)?.SyncSending ?? false;
        if (Interlocked.CompareExchange(ref _launchRequestedTicks, _clock.ElapsedTicks, 0) != 0) return;
        _sendingAtLaunch = sending;
        _launch.TrySetResult();
    }

    public bool LaunchRequested => _launch.Task.IsCompleted;

    /// <summary>
    /// Runs pre-synchronization until <see cref="Launch"/>, then the switchover. Returns the outcome; on any
    /// failure before the destination confirmed it runs, the source guest is running again.
    /// Throws <see cref="AuthenticationFailedException"/> when the peer cannot be authenticated (do not retry).
    /// </summary>
    public async Task<MigrationResult> RunAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await RunCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _roundFeed.End(); // ReadRoundsAsync streams complete with the run
        }
    }

    private async Task<MigrationResult> RunCoreAsync(CancellationToken cancellationToken)
    {
        SenderChannel? channel = null;
        HandshakeResult session;
        (SessionStatus Status, ulong[]? Hashes) start = default;
        bool multiStream = _options.Streams > 1;
        SenderHandshakeOptions offer = Offer(resumable: _options.Reconnect is not null, multiStream);
        Socket socket = _socket;
        while (true)
        {
            try
            {
                channel = await SenderChannel.OpenAsync(socket, _options, NowNs, cancellationToken).ConfigureAwait(false);
                session = await HandshakeAsync(channel, offer, cancellationToken).ConfigureAwait(false);
                if (Resumable(session)) start = await SenderResume.StartAsync(channel, session, _key, _sessionId, 0, _source.Memory.PageCount, cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (ProtocolException e) when (e.FromPeerAbort && e.AbortReason == AbortReason.UnsupportedOption
                                              && (_options.Reconnect is not null || multiStream) && OlderOffer(offer.Options) is { } older)
            {
                // An older receiver refuses the option bits it does not know in Hello: connect again offering only what it knows.
                await channel!.CloseAsync().ConfigureAwait(false);
                channel.Dispose();
                channel = null;
                offer = offer with { Options = older.Options };
                if (older.Notice is { } notice) Notice?.Invoke(notice);
                try
                {
                    socket = _options.Reconnect is { } reconnect
                        ? await reconnect.Connect(cancellationToken).ConfigureAwait(false)
                        : await _connectStream(0, cancellationToken).ConfigureAwait(false);
                    _ownedSockets.Add(socket);
                    multiStream &= (offer.Options & HelloOptions.MultiStream) != 0;
                }
                catch (Exception again) when (again is IOException or SocketException)
                {
                    return await HandshakeFailedAsync(null, again).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is (ProtocolException and not AuthenticationFailedException) or IOException or SocketException)
            {
                return await HandshakeFailedAsync(channel, e).ConfigureAwait(false);
            }
            catch
            {
                channel?.Dispose();
                DisposeOwnedSockets();
                throw;
            }
        }

        if (_source is IDeviceStateHandoverSource && (session.Options & HelloOptions.DeferredHandover) == 0)
            return await HandshakeFailedAsync(channel, new ProtocolException(ProtocolError.InvalidField, "Hello.options", (uint)session.Options,
                "the receiver does not take a device state handed over by libvirt/QEMU (protocol 1.2 DeferredHandover): start it as " +
                "`kvmpresync receive --libvirt …` (version 1.2 or later)")).ConfigureAwait(false);
        channel.ExpectsDestinationReady = _source is IDeviceStateHandoverSource;
        SourceDigest.Warm(_source.Memory); // JIT and warm the digest path now, not during the downtime
        JitWarmup.Prepare(typeof(FinalLivePhase), typeof(PausedPhase), typeof(SourceDigest), typeof(StandbyCall), typeof(LaunchConvergence),
            _options.Engine.Convergence.GetType(),
            typeof(SenderRun), typeof(SenderChannel), typeof(RoundRecord), typeof(PresyncSender), typeof(GuestWindow)); // the switchover's code, compiled now
        await FrameWarmup.SwitchoverAsync().ConfigureAwait(false); // and its frames' (generic over their body types)
        LaunchWarmup.Rehearse(_options.Engine, _source.Memory.PageSize); // and the engine's post-launch steps
        await LaunchWarmup.AwaitersAsync().ConfigureAwait(false);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var run = new SenderRun(_source, _options, channel, _clock, r =>
        {
            _roundFeed.Publish(r);
            RoundCompleted?.Invoke(r);
        })
        {
            Bursts = _options.TimeBursts ? BurstSampler.Start(_source.DirtyLog) : null,
        };
        Volatile.Write(ref _run, run);
        run.TreeDigest = TreeDigest(session);
        if (multiStream && (session.Options & HelloOptions.MultiStream) == 0)
            Notice?.Invoke("the receiver does not take several streams here (protocol 1.3 MultiStream is served by `kvmpresync receive`): one stream");
        else if (multiStream)
        {
            try
            {
                run.UseStreams(await SenderStreams.OpenAsync(channel, session, _key, _options, run.Encoder, _source.Memory, _connectStream, NowNs, cancellationToken)
                    .ConfigureAwait(false));
            }
            catch (Exception e) when (e is (ProtocolException and not AuthenticationFailedException) or IOException or SocketException)
            {
                return await HandshakeFailedAsync(channel, new IOException($"opening {_options.Streams - 1} data streams failed: {Describe(e)}", e)).ConfigureAwait(false);
            }
        }
        bool resumable = Resumable(session) && _options.Reconnect is not null;
        if (Resumable(session)) run.SessionId = _sessionId;
        channel.StartReading(stop.Token, resumable ? _options.Reconnect!.LivenessTimeout : null);
        bool paused = false;
        long launchBytesStart = 0;
        var handover = _source as IDeviceStateHandoverSource;
        bool handoverBegun = false;
        try
        {
            while (true)
            {
                try
                {
                    await SyncPhase.RunAsync(run, _launch.Task, stop.Token).ConfigureAwait(false);
                    break;
                }
                catch (Exception e) when (resumable && IsConnectionLoss(e) && !stop.IsCancellationRequested)
                {
                    if (await ReconnectAsync(run, e, stop.Token).ConfigureAwait(false) is { } gaveUp)
                        return Failed(run, gaveUp, null);
                }
            }
            long syncEndedAt = _clock.ElapsedTicks;
            run.CloseResend(caughtUp: false);
            run.EndSyncProgress();
            run.Bursts?.Stop(); // the launch decides with the forecast its estimate is made with
            ReadinessEstimate? estimateAtLaunch = run.ReadinessNow(_sendingAtLaunch); // as the API would have answered at the launch request
            long launchStart = Interlocked.Read(ref _launchRequestedTicks);
            launchBytesStart = run.BytesWritten;
            if (handover is not null)
            {
                run.Phase = SenderPhase.FinalLive;
                handoverBegun = true; // from here a failure gives the guest back through Resume (it also undoes the handover's set-up)
                handover.BeginHandover(); // the destination starts now, while the guest still runs
            }

            ConvergenceDecision convergence = await FinalLivePhase.RunAsync(run, stop.Token, handover is null ? null
                : new FinalLivePhase.DestinationStart(run.Channel.DestinationReady, handover.Handover, _options.DestinationReadyTimeout)).ConfigureAwait(false);
            if (convergence.Action == ConvergenceAction.GiveUp)
            {
                string why = $"the convergence policy gave up ({convergence.Reason}): {Format(run.Engine.PendingBytes())} still pending would exceed the downtime limit";
                run.RaiseDeferred();
                await run.Channel.AbortAsync(AbortReason.Cancelled, why).ConfigureAwait(false);
                if (handoverBegun) _source.Resume(); // undo the handover's set-up; the destination's hold fails with the receiver's session
                return Failed(run, why + "; the source guest kept running", convergence);
            }

            if (handover is not null) await run.Channel.DestinationReady.ConfigureAwait(false); // completed in FinalLive; throws a reader failure
            PausedPhase.Timeline t = await PausedPhase.RunAsync(run, () => paused = true, stop.Token).ConfigureAwait(false);
            run.Phase = SenderPhase.AwaitingResumed;
            await run.Channel.ReaderEndedOrTimeout(_options.ResumeTimeout, stop.Token).ConfigureAwait(false);
            run.Channel.ThrowUnlessResumed(_options.ResumeTimeout);
            long resumedAt = _clock.ElapsedTicks;
            if (handover is not null) await AwaitHandoverAsync(handover, stop.Token).ConfigureAwait(false);
            _source.Stop();
            run.Phase = SenderPhase.Done;
            double launchToResume = SenderRun.TicksToMs(resumedAt - launchStart), downtime = SenderRun.TicksToMs(resumedAt - t.PausedAt);
            long launchBytes = run.BytesWritten - launchBytesStart;
            return new MigrationResult
            {
                Succeeded = true,
                Verified = true,
                LaunchToResumeMs = launchToResume,
                DowntimeMs = downtime,
                SyncBytes = run.SyncBytes,
                InitialCopyBytes = run.InitialCopyBytes,
                LaunchBytes = launchBytes,
                InitialCopyMs = run.InitialCopyMs,
                Streams = run.Streams?.Count ?? 1,
                ReadinessAtLaunch = estimateAtLaunch is null ? null : new ReadinessCheck(estimateAtLaunch, launchToResume, downtime, launchBytes),
                FinalLiveRounds = run.FinalLiveRounds,
                FinalDeltaPages = t.DeltaPages,
                Convergence = convergence,
                ProgressRateDuringSync = run.SyncProgressRate,
                ProgressRateFirstSeconds = run.EarlyProgressRate,
                PresyncWindow = run.SyncWindow,
                GuestSlowdown = GuestSlowdown.Of(_options.Baseline, run.SyncWindow),
                ZeroCopy = run.Channel.ZeroCopy?.Stats,
                Compression = run.Compressor.Stats(),
                Downtime = new DowntimeBreakdown(SenderRun.TicksToMs(t.DeltaSentAt - t.PausedAt), SenderRun.TicksToMs(t.DigestAt - t.DeltaSentAt),
                    SenderRun.TicksToMs(t.StateSentAt - t.DigestAt), SenderRun.TicksToMs(resumedAt - t.StateSentAt)),
                Launch = new LaunchBreakdown(SenderRun.TicksToMs(Math.Max(0, syncEndedAt - launchStart)), SenderRun.TicksToMs(t.PausedAt - syncEndedAt),
                    run.FinalLiveBytes, run.FinalLiveHarvestTime.TotalMilliseconds),
                Rounds = run.Rounds,
                SessionId = SessionIdHex(run),
                Reconnects = [.. run.Reconnects],
            };
        }
        catch (Exception e) when (e is not AuthenticationFailedException && !cancellationToken.IsCancellationRequested)
        {
            if (paused || handoverBegun) _source.Resume();
            run.RaiseDeferred();
            if (e is not ProtocolException { FromPeerAbort: true })
                await run.Channel.AbortAsync(AbortReason.SenderFailure, $"the sender failed in phase {run.Phase}: {e.Message}").ConfigureAwait(false);
            return Failed(run, Describe(e) + (paused ? "; the source guest was resumed" : "; the source guest kept running"), null);
        }
        catch
        {
            if (paused || handoverBegun) _source.Resume();
            if (cancellationToken.IsCancellationRequested)
                await run.Channel.AbortAsync(AbortReason.Cancelled, "the sender was cancelled; the source guest keeps running").ConfigureAwait(false);
            throw;
        }
        finally
        {
            stop.Cancel();
            await run.CloseStreamsAsync().ConfigureAwait(false);
            run.StateSave.Dispose();
            run.Bursts?.Dispose();
            await run.Channel.CloseAsync().ConfigureAwait(false);
            run.Channel.Dispose();
            DisposeOwnedSockets();
        }
    }

    /// <summary>After Resumed: the handover (libvirt's Finish/Confirm) must complete before the source may be stopped.</summary>
    private async Task AwaitHandoverAsync(IDeviceStateHandoverSource handover, CancellationToken ct)
    {
        Task done = await Task.WhenAny(handover.Handover, Task.Delay(_options.HandoverTimeout, ct)).ConfigureAwait(false);
        if (done != handover.Handover)
            throw new TimeoutException($"the device-state handover did not complete within {_options.HandoverTimeout.TotalSeconds:0.#} s after the destination confirmed it runs");
        await handover.Handover.ConfigureAwait(false);
    }

    /// <summary>The resumable session's id (hex), chosen at random for this migration.</summary>
    public string SessionIdHex() => Convert.ToHexStringLower(_sessionId);

    /// <summary>Raised when the connection is lost during sync and the sender starts reconnecting (the cause, in words).</summary>
    public event Action<string>? ConnectionLost;

    /// <summary>Raised when a reconnection resumed (or restarted) the session.</summary>
    public event Action<ReconnectRecord>? Reconnected;

    /// <summary>Things worth telling the user that are not failures (e.g. the receiver cannot resume sessions).</summary>
    public event Action<string>? Notice;

    private SenderHandshakeOptions Offer(bool resumable, bool multiStream = false) => new(MigrationLayout.Of(_source.Memory), PageHashAlgorithm.PageHasher,
        HelloOptions.ZeroPages | (resumable ? HelloOptions.Resumable : HelloOptions.None) | (multiStream ? HelloOptions.MultiStream : HelloOptions.None)
        | (_source is IDeviceStateHandoverSource ? HelloOptions.DeferredHandover : HelloOptions.None) | HelloOptions.TreeDigest
        | (CompressionSetup.Offered(_options) ? HelloOptions.CompressedPages : HelloOptions.None));

    /// <summary>The option bits a 1.2 receiver knows (it refuses any other in Hello).</summary>
    private const HelloOptions KnownTo12 = HelloOptions.ZeroPages | HelloOptions.UnchangedPages | HelloOptions.Resumable | HelloOptions.DeferredHandover;

    /// <summary>
    /// What to offer an older receiver that refused <paramref name="offered"/> (Abort(UnsupportedOption)): first only the bits a
    /// 1.2 receiver knows (the digest is then the flat one), then — a 1.0 receiver — without Resumable; null when nothing is left to drop.
    /// </summary>
    private static (HelloOptions Options, string? Notice)? OlderOffer(HelloOptions offered)
    {
        if ((offered & ~KnownTo12) != 0)
            return (offered & KnownTo12, (offered & HelloOptions.MultiStream) != 0 ? "the receiver does not take several streams (protocol 1.2 or older): one stream" : null);
        if ((offered & HelloOptions.Resumable) != 0)
            return (offered & ~HelloOptions.Resumable, "the receiver does not support resumable sessions (protocol 1.0): a lost connection will fail the migration");
        return null;
    }

    private static bool TreeDigest(HandshakeResult session) => (session.Options & HelloOptions.TreeDigest) != 0;

    private static bool Resumable(HandshakeResult session) => (session.Options & HelloOptions.Resumable) != 0;

    private Task<HandshakeResult> HandshakeAsync(SenderChannel channel, SenderHandshakeOptions offer, CancellationToken ct) =>
        Handshake.RunSenderAsync(channel.Reader, channel.Writer, offer, _key, ct);

    /// <summary>A loss worth reconnecting for: the transport failed, the link went silent, or the receiver went away (stopped, restarted, timed out).</summary>
    private static bool IsConnectionLoss(Exception e) => e is IOException or SocketException
        or ProtocolException { FromPeerAbort: false, IsRetryable: true }
        or ProtocolException { FromPeerAbort: true, AbortReason: AbortReason.Cancelled or AbortReason.Timeout or AbortReason.ReceiverFailure };

    /// <summary>
    /// The connection was lost during sync; the guest keeps running. Reconnect with backoff, authenticate, SessionStart with the
    /// next generation; Resumed: resend what the receiver's hashes show it lacks; Unknown: start over. Returns null when the
    /// session continues, or why the sender gave up (the source keeps running).
    /// </summary>
    private async Task<string?> ReconnectAsync(SenderRun run, Exception cause, CancellationToken stop)
    {
        ReconnectOptions policy = _options.Reconnect!;
        long lostAt = _clock.ElapsedTicks;
        string why = Describe(cause);
        run.CloseResend(caughtUp: false);
        ConnectionLost?.Invoke(why);
        SenderChannel old = run.Channel;
        await old.CloseAsync().ConfigureAwait(false);
        if (await run.CloseStreamsAsync().ConfigureAwait(false))
            Notice?.Invoke("the data streams closed with the lost connection: after reconnecting, the migration continues on one stream");
        TimeSpan backoff = policy.InitialBackoff;
        string? lastError = null;
        for (int attempt = 1; ; attempt++)
        {
            Socket? socket = null;
            SenderChannel? channel = null;
            try
            {
                using (var connect = CancellationTokenSource.CreateLinkedTokenSource(stop))
                {
                    connect.CancelAfter(policy.ConnectTimeout);
                    try
                    {
                        socket = await policy.Connect(connect.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                    {
                        throw new IOException($"connect timed out after {policy.ConnectTimeout.TotalSeconds:0.#} s");
                    }
                }
                channel = await SenderChannel.OpenAsync(socket, _options, NowNs, stop).ConfigureAwait(false);
                using var handshake = CancellationTokenSource.CreateLinkedTokenSource(stop);
                handshake.CancelAfter(policy.ResumeHandshakeTimeout);
                HandshakeResult session = await HandshakeAsync(channel, Offer(resumable: true), handshake.Token).ConfigureAwait(false);
                if (!Resumable(session))
                    throw new ProtocolException(ProtocolError.NegotiationFailed, "HelloAck.acceptedOptions", session.Options,
                        "the receiver no longer accepts resumable sessions");
                uint generation = run.Generation + 1;
                (SessionStatus status, ulong[]? hashes) = await SenderResume.StartAsync(channel, session, _key, _sessionId, generation,
                    run.Memory.PageCount, handshake.Token).ConfigureAwait(false);
                run.Generation = generation;
                run.TreeDigest = TreeDigest(session);
                old.Dispose();
                long marked = run.BeginResend(status == SessionStatus.Resumed ? hashes : null);
                channel.ExpectsDestinationReady = _source is IDeviceStateHandoverSource;
                run.UseChannel(channel);
                DisposeOwnedSockets(); // the lost connection's socket, if we opened it
                _ownedSockets.Add(socket);
                channel.StartReading(stop, policy.LivenessTimeout);
                var record = new ReconnectRecord
                {
                    LostAtMs = SenderRun.TicksToMs(lostAt),
                    Cause = why,
                    OutageMs = SenderRun.TicksToMs(_clock.ElapsedTicks - lostAt),
                    Attempts = attempt,
                    Status = status,
                    Generation = generation,
                    PagesToResend = marked,
                };
                run.AddReconnect(record);
                if (status != SessionStatus.Resumed)
                    Notice?.Invoke($"the receiver had no state for session {SessionIdHex()}: starting over");
                Reconnected?.Invoke(record);
                return null;
            }
            catch (AuthenticationFailedException)
            {
                channel?.Dispose();
                socket?.Dispose();
                old.Dispose();
                throw; // a different key now: never retried
            }
            catch (Exception e) when (!stop.IsCancellationRequested && e is IOException or SocketException or ProtocolException or OperationCanceledException)
            {
                if (channel is not null) await channel.CloseAsync().ConfigureAwait(false);
                channel?.Dispose();
                socket?.Dispose();
                lastError = e is ProtocolException p && p.FromPeerAbort ? $"the receiver refused: {e.Message}" : e.Message;
            }
            TimeSpan outage = TimeSpan.FromTicks((long)((_clock.ElapsedTicks - lostAt) * (double)TimeSpan.TicksPerSecond / Stopwatch.Frequency));
            if (outage + backoff > policy.MaxOutage)
            {
                old.Dispose();
                return $"the connection to the receiver was lost during sync ({why}) and could not be re-established within {policy.MaxOutage.TotalSeconds:0.#} s " +
                       $"({attempt} attempts; last: {lastError}); the source guest kept running";
            }
            await Task.Delay(backoff, stop).ConfigureAwait(false);
            backoff = backoff * 2 < policy.MaxBackoff ? backoff * 2 : policy.MaxBackoff;
        }
    }

    private string? SessionIdHex(SenderRun run) => run.SessionId is null ? null : SessionIdHex();

    private void DisposeOwnedSockets()
    {
        foreach (Socket s in _ownedSockets) s.Dispose();
        _ownedSockets.Clear();
    }

    private static MigrationResult Failed(SenderRun run, string why, ConvergenceDecision? convergence) => new()
    {
        Succeeded = false,
        Failure = why,
        FailedPhase = run.Phase,
        Convergence = convergence,
        SyncBytes = run.SyncBytes,
        FinalLiveRounds = run.FinalLiveRounds,
        Compression = run.Compressor.Stats(),
        PresyncWindow = run.SyncWindow,
        Rounds = run.Rounds,
        SessionId = run.SessionId is null ? null : Convert.ToHexStringLower(run.SessionId),
        Reconnects = [.. run.Reconnects],
    };

    private static string Describe(Exception e) => e switch
    {
        ProtocolException p when p.FromPeerAbort => $"the receiver aborted: {p.Message}",
        ProtocolException p => $"protocol error: {p.Message}",
        IOException or SocketException => $"connection to the receiver lost: {e.Message}",
        _ => e.Message,
    };

    /// <summary>The handshake (TLS included) failed: close what was opened; the source guest kept running.</summary>
    private async Task<MigrationResult> HandshakeFailedAsync(SenderChannel? channel, Exception e)
    {
        if (channel is not null)
        {
            await channel.CloseAsync().ConfigureAwait(false);
            channel.Dispose();
        }
        else
        {
            try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        }
        DisposeOwnedSockets();
        return new MigrationResult
        {
            Succeeded = false,
            FailedPhase = SenderPhase.Handshake,
            // no channel: opening it (the TLS handshake) failed, and its message says why and what to check
            Failure = $"handshake failed: {(channel is null ? e.Message : DescribeHandshake(e, channel.Encrypted))}; the source guest kept running",
        };
    }

    private static string DescribeHandshake(Exception e, bool encrypted)
    {
        string text = Describe(e);
        if (!encrypted || e is ProtocolException { FromPeerAbort: true }) return text;
        return text + (TlsTransport.IsTlsFailure(e)
            ? "; the receiver refused the TLS session — most likely this side's certificate: check that the receiver's --tls-ca is the CA that signed this side's --tls-cert (or pins it)"
            : "; the receiver dropped the connection right after the TLS handshake — if it logged a certificate error, check that its --tls-ca is the CA that signed this side's --tls-cert (or pins it)");
    }

    private static string Format(long bytes) => bytes >= 1 << 20 ? $"{bytes / (double)(1 << 20):0.#} MiB" : $"{bytes / 1024.0:0.#} KiB";

    private ulong NowNs() => (ulong)(_clock.ElapsedTicks * (1e9 / Stopwatch.Frequency));
}
