using System.Net;
using System.Net.Sockets;
using KvmPresync.Core;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>How a <see cref="ReceiveService"/> admits and guards sessions.</summary>
public sealed record ReceiveServiceOptions
{
    /// <summary>Each session's receiver options (memory cap checked at Hello, timeouts, ack rate).</summary>
    public ReceiverOptions Receiver { get; init => field = OptionGuard.NotNull(value, nameof(ReceiveServiceOptions)); } = new();

    /// <summary>Sessions served at the same time; a connection beyond this gets Abort(Busy) and is closed.</summary>
    public int MaxConcurrentSessions { get; init => field = OptionGuard.Require(value, value >= 1, nameof(ReceiveServiceOptions), "must be at least 1"); } = 4;

    /// <summary>What the host can allocate now; admission refuses guests beyond it (less what admitted sessions reserved).</summary>
    public Func<long> HostAvailableBytes { get; init => field = OptionGuard.NotNull(value, nameof(ReceiveServiceOptions)); } = () => HostMemory.AvailableBytes();

    /// <summary>
    /// How long the destination of a resumable session (protocol 1.1) whose connection failed during sync is kept, memory
    /// reservation included, for the sender to reconnect and resume; then it is released. Zero: sessions are not resumable.
    /// </summary>
    public TimeSpan ParkFor { get; init => field = OptionGuard.NotNegative(value, nameof(ReceiveServiceOptions)); } = TimeSpan.FromMinutes(5);

}

/// <summary>How one session of a <see cref="ReceiveService"/> ended.</summary>
/// <param name="SessionId">The id the service's log lines carry (s1, s2, …).</param>
/// <param name="Peer">The sender's address.</param>
/// <param name="Result">The receive's outcome.</param>
/// <param name="ResumedTarget">The destination, running, when <see cref="ReceiveResult.Resumed"/>: the event's handler owns it from then on.</param>
public sealed record ReceiveSessionEnded(string SessionId, EndPoint? Peer, ReceiveResult Result, IMigrationTarget? ResumedTarget);

/// <summary>A connection a <see cref="ReceiveService"/> refused before serving it (today: the session cap, <see cref="AbortReason.Busy"/>).</summary>
/// <param name="SessionId">The id the refusal's log line carries.</param>
/// <param name="Peer">The refused peer's address.</param>
/// <param name="Reason">The Abort reason the peer was sent.</param>
public sealed record ReceiveSessionRefused(string SessionId, EndPoint? Peer, AbortReason Reason);

/// <summary>A session a <see cref="ReceiveService"/> admitted: authenticated, memory reserved, destination created.</summary>
public sealed record ReceiveSessionAdmitted(string SessionId, EndPoint? Peer, long MemoryBytes);

/// <summary>Counters of a <see cref="ReceiveService"/> since it started.</summary>
public sealed record ReceiveServiceStats(long Accepted, long RefusedBusy, long Failed, long Resumed, int Active);

/// <summary>
/// A migration receiver that serves until stopped, like libvirtd: it accepts any number of migrations, one after
/// another and at the same time (up to <see cref="ReceiveServiceOptions.MaxConcurrentSessions"/>), each session isolated
/// in its own <see cref="PresyncReceiver"/> state machine. A bad peer — garbage, a wrong key, connect-and-close, a stalled
/// peer, an oversized layout — gets an Abort with the cause (where the protocol allows), a closed connection and a log
/// line; the service goes on. Guest memory is admitted after authentication, against a cap and what the host has free
/// (<see cref="MemoryAdmission"/>). Stopping drains: sessions not yet resumed are aborted (Abort(Cancelled)); resumed
/// guests were already handed to their owner through <see cref="SessionEnded"/> and keep running.
/// </summary>
public sealed class ReceiveService
{
    private static readonly TimeSpan RefusalWriteTimeout = TimeSpan.FromSeconds(2);

    private readonly PreSharedKey _key;
    private readonly Func<MemoryLayout, IMigrationTarget> _createTarget;
    private readonly ReceiveServiceOptions _options;
    private readonly ServiceLog _log;
    private readonly MemoryAdmission _admission;
    private readonly ParkedSessions? _parked;
    private readonly StreamJoins _joins = new(); // protocol 1.3: sessions whose data connections may join them
    private readonly object _lock = new();
    private readonly HashSet<Task> _sessions = [];
    private long _nextSession, _accepted, _refusedBusy, _failed, _resumed;

    public ReceiveService(PreSharedKey key, Func<MemoryLayout, IMigrationTarget> createTarget, ReceiveServiceOptions? options, ServiceLog log)
    {
        _key = key ?? throw new ArgumentNullException(nameof(key));
        _createTarget = createTarget ?? throw new ArgumentNullException(nameof(createTarget));
        _options = options ?? new ReceiveServiceOptions();
        _log = log ?? throw new ArgumentNullException(nameof(log));
        _admission = new MemoryAdmission(_options.Receiver.MaxMemoryBytes, _options.HostAvailableBytes);
        _parked = _options.ParkFor > TimeSpan.Zero ? new ParkedSessions(_options.ParkFor, _log) : null;
    }

    /// <summary>Sessions whose connection failed during sync, kept for the sender's reconnection.</summary>
    public int ParkedSessions => _parked?.ParkedCount ?? 0;

    /// <summary>Raised once per session when it ends (on the session's task). A resumed target is the handler's to own.</summary>
    public event Action<ReceiveSessionEnded>? SessionEnded;

    /// <summary>
    /// Raised when a session is admitted: its sender authenticated, its memory was reserved and its destination created
    /// (a resumed reconnection continues a parked session and is not admitted again). <see cref="SessionEnded"/> follows
    /// for the same id. For observers (metrics): a throwing handler is logged and ignored.
    /// </summary>
    public event Action<ReceiveSessionAdmitted>? SessionAdmitted;

    /// <summary>Raised when a connection is refused before it is served (the session cap). For observers, like <see cref="SessionAdmitted"/>.</summary>
    public event Action<ReceiveSessionRefused>? SessionRefused;

    public ReceiveServiceStats Stats
    {
        get
        {
            lock (_lock) return new ReceiveServiceStats(_accepted, _refusedBusy, _failed, _resumed, _sessions.Count);
        }
    }

    /// <summary>
    /// Accepts connections on <paramref name="listener"/> until <paramref name="cancellationToken"/>; then aborts the sessions in
    /// progress and returns when they have ended. Never throws for a peer's doing.
    /// </summary>
    public async Task RunAsync(Socket listener, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(listener);
        _log.Info("service.listening", null, ("address", listener.LocalEndPoint), ("max_sessions", _options.MaxConcurrentSessions),
            ("max_memory_bytes", _options.Receiver.MaxMemoryBytes));
        using var sessions = new CancellationTokenSource();
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await MigrationSocket.AcceptAsync(listener, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (SocketException e)
            {
                // e.g. out of file descriptors: the service stays up and tries again shortly
                _log.Warn("service.accept_failed", null, ("error", e.Message));
                await Task.Delay(100, CancellationToken.None).ConfigureAwait(false);
                continue;
            }
            Admit(connection, sessions.Token);
        }

        Task[] inFlight;
        lock (_lock) inFlight = [.. _sessions];
        _log.Info("service.draining", null, ("sessions", inFlight.Length));
        sessions.Cancel(); // sessions not resumed end with Abort(Cancelled)
        await Task.WhenAll(inFlight).ConfigureAwait(false);
        _parked?.Dispose(); // nothing is persisted: a restarted receiver answers Unknown and the sender starts over
        ReceiveServiceStats s = Stats;
        _log.Info("service.stopped", null, ("accepted", s.Accepted), ("resumed", s.Resumed), ("failed", s.Failed), ("refused_busy", s.RefusedBusy));
    }

    /// <summary>Serves exactly one connection (the one-shot mode) and returns how it ended.</summary>
    public async Task<ReceiveSessionEnded> RunOnceAsync(Socket listener, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(listener);
        _log.Info("service.listening", null, ("address", listener.LocalEndPoint), ("once", true), ("max_memory_bytes", _options.Receiver.MaxMemoryBytes));
        Socket connection = await MigrationSocket.AcceptAsync(listener, cancellationToken).ConfigureAwait(false);
        string id = NextId();
        lock (_lock) _accepted++;
        // The migration's data streams (protocol 1.3) connect to the same listener: accept them (and only them) meanwhile.
        using var joinsEnd = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task joining = AcceptJoinsAsync(listener, joinsEnd.Token);
        try
        {
            // One-shot: nothing to resume into — except that a device-state handover needs the session id SessionStart carries.
            return await ServeAsync(id, connection, cancellationToken, resumable: _options.Receiver.DeviceStateHandover).ConfigureAwait(false);
        }
        finally
        {
            joinsEnd.Cancel();
            await joining.ConfigureAwait(false);
        }
    }

    /// <summary>One-shot mode: serves further connections as data streams of the migration being received (a Hello gets Abort(Busy)).</summary>
    private async Task AcceptJoinsAsync(Socket listener, CancellationToken end)
    {
        var served = new List<Task>();
        while (!end.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await MigrationSocket.AcceptAsync(listener, end).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (SocketException e)
            {
                _log.Warn("service.accept_failed", null, ("error", e.Message));
                try { await Task.Delay(100, end).ConfigureAwait(false); } catch (OperationCanceledException) { break; }
                continue;
            }
            string id = NextId();
            served.Add(Task.Run(() => ServeAsync(id, connection, end, resumable: false, joinOnly: true), CancellationToken.None));
        }
        await Task.WhenAll(served).ConfigureAwait(false);
    }

    private void Admit(Socket connection, CancellationToken sessions)
    {
        string id = NextId();
        lock (_lock)
        {
            if (_sessions.Count - _joins.ActiveStreams >= _options.MaxConcurrentSessions) // a joined data stream is part of a session, not one
            {
                _refusedBusy++;
                _ = RefuseBusyAsync(id, connection, _sessions.Count);
                return;
            }
            _accepted++;
            Task session = null!;
            session = Task.Run(async () =>
            {
                try
                {
                    await ServeAsync(id, connection, sessions).ConfigureAwait(false);
                }
                finally
                {
                    lock (_lock) _sessions.Remove(session);
                }
            }, CancellationToken.None);
            _sessions.Add(session);
        }
    }

    private async Task<ReceiveSessionEnded> ServeAsync(string id, Socket connection, CancellationToken cancellationToken, bool resumable = true, bool joinOnly = false)
    {
        using Socket owned = connection;
        EndPoint? peer = SafePeer(connection);
        _log.Info("session.accepted", id, ("peer", peer));
        (ReceiveResult result, IMigrationTarget? resumed) = await PresyncReceiver.RunSessionAsync(connection, _key, layout =>
        {
            IDisposable reservation = _admission.Reserve((long)layout.TotalBytes);
            _log.Info("session.admitted", id, ("slots", layout.Slots.Count), ("memory_bytes", layout.TotalBytes), ("reserved_bytes", _admission.ReservedBytes));
            try
            {
                IMigrationTarget target = _createTarget(layout);
                Raise(SessionAdmitted, new ReceiveSessionAdmitted(id, peer, (long)layout.TotalBytes));
                return (target, reservation);
            }
            catch
            {
                reservation.Dispose();
                throw;
            }
        }, resumable ? _parked : null, id, _options.Receiver, cancellationToken, _joins, joinOnly).ConfigureAwait(false);

        if (result.Stream is { } stream)
        {
            // a data stream of another session: that session's result is the outcome (and its owner's event)
            if (result.Failure is null) _log.Info("stream.ended", id, ("peer", peer), ("stream", stream), ("bytes", result.BytesReceived));
            else _log.Warn("stream.failed", id, ("peer", peer), ("stream", stream), ("bytes", result.BytesReceived), ("error", result.Failure));
            return new ReceiveSessionEnded(id, peer, result, null);
        }

        lock (_lock)
        {
            if (result.Resumed) _resumed++;
            else if (!result.Parked) _failed++;
        }
        if (result.Parked)
            _log.Info("session.connection_lost", id, ("peer", peer), ("phase", result.FailedIn), ("bytes", result.BytesReceived), ("error", result.Failure));
        else if (result.Resumed)
            _log.Info("session.resumed", id, ("peer", peer), ("verified", result.Verified), ("pages", result.PagesApplied),
                ("bytes", result.BytesReceived), ("resume_ms", result.ResumeMs), ("rehashed_pages", result.PagesRehashedAtSwitchover),
                ("warning", result.Failure));
        else
            _log.Warn("session.failed", id, ("peer", peer), ("phase", result.FailedIn), ("abort", result.AbortSent), ("cancelled", result.Cancelled),
                ("bytes", result.BytesReceived), ("error", result.Failure));
        var ended = new ReceiveSessionEnded(id, peer, result, resumed);
        try
        {
            SessionEnded?.Invoke(ended);
        }
        catch (Exception e)
        {
            // the owner's handler must not take the service down with it
            _log.Warn("session.handler_failed", id, ("error", $"{e.GetType().Name}: {e.Message}"));
        }
        return ended;
    }

    private async Task RefuseBusyAsync(string id, Socket connection, int active)
    {
        using Socket owned = connection;
        EndPoint? peer = SafePeer(connection);
        _log.Warn("session.refused", id, ("peer", peer), ("reason", AbortReason.Busy), ("active", active));
        Raise(SessionRefused, new ReceiveSessionRefused(id, peer, AbortReason.Busy));
        try
        {
            using var timeout = new CancellationTokenSource(RefusalWriteTimeout);
            var writer = new FrameWriter(new SocketGatherWriter(connection));
            await writer.WriteAsync(new Abort(AbortReason.Busy,
                $"the receiver serves its maximum of {_options.MaxConcurrentSessions} sessions; try again later"), timeout.Token).ConfigureAwait(false);
            connection.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or ProtocolException)
        {
            // the peer is gone already
        }
    }

    /// <summary>Tells observers; a throwing observer is logged and ignored (it must not fail a session).</summary>
    private void Raise<T>(Action<T>? handler, T value) where T : notnull
    {
        try { handler?.Invoke(value); }
        catch (Exception e) { _log.Warn("service.observer_failed", null, ("event", value.GetType().Name), ("error", $"{e.GetType().Name}: {e.Message}")); }
    }

    private string NextId() => $"s{Interlocked.Increment(ref _nextSession)}";

    private static EndPoint? SafePeer(Socket s)
    {
        try { return s.RemoteEndPoint; } catch (SocketException) { return null; } catch (ObjectDisposedException) { return null; }
    }
}
