using KvmPresync.Core;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// The receiver's resumable sessions (protocol 1.1, <see cref="HelloOptions.Resumable"/>), by session id: the connection
/// that serves one now (live), or its destination, memory (with the per-page hashes) and memory reservation kept after
/// that connection failed during sync (parked) until the sender reconnects or <see cref="KeepFor"/> passes. Owned by a
/// <see cref="ReceiveService"/>; nothing is persisted (a restarted receiver knows no session). Thread-safe.
/// </summary>
internal sealed class ParkedSessions : IDisposable
{
    /// <summary>How long a new connection waits for the old connection of the same session to notice the takeover and park.</summary>
    private static readonly TimeSpan TakeoverWait = TimeSpan.FromSeconds(10);

    private readonly object _lock = new();
    private readonly Dictionary<UInt128, Entry> _entries = [];
    private readonly ServiceLog? _log;
    private bool _disposed;

    public ParkedSessions(TimeSpan keepFor, ServiceLog? log)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(keepFor, TimeSpan.Zero);
        KeepFor = keepFor;
        _log = log;
    }

    public TimeSpan KeepFor { get; }

    /// <summary>Sessions parked now.</summary>
    public int ParkedCount { get { lock (_lock) return _entries.Values.Count(e => e.Parked is not null); } }

    /// <summary>What a parked session keeps: the destination (not resumed), its memory with the page hashes, the memory reservation.</summary>
    internal sealed record Parked(IMigrationTarget Target, ReceivedMemory Memory, IDisposable? Reservation) : IDisposable
    {
        public void Dispose()
        {
            Memory.StopTracking();
            try { Target.Dispose(); }
            finally { Reservation?.Dispose(); }
        }
    }

    /// <summary>The answer to a SessionStart: the status to send and, for Resumed, the state taken over (the caller owns it now).</summary>
    internal readonly record struct Claim(SessionStatus Status, Parked? State, string? Why);

    private sealed class Entry
    {
        public uint Generation;
        public CancellationTokenSource? Live; // the serving connection's takeover source; null while parked
        public TaskCompletionSource Ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Parked? Parked;
        public Timer? Expiry;
    }

    /// <summary>
    /// A connection authenticated and sent SessionStart{id, generation}. If the session's previous connection is still
    /// live here (this side has not noticed the drop), it is cancelled through its takeover source and waited for until it
    /// has parked. Then: generation 0 → New; a parked session at generation − 1 with the same layout → Resumed (its state
    /// is handed over); anything else → Unknown (a parked state that cannot be used is released). In every case the
    /// caller becomes the session's live connection at <paramref name="generation"/>, cancellable through <paramref name="takeover"/>.
    /// </summary>
    public async Task<Claim> ClaimAsync(UInt128 id, uint generation, MemoryLayout layout, CancellationTokenSource takeover, string connection,
        CancellationToken cancellationToken)
    {
        bool waited = false;
        while (true)
        {
            CancellationTokenSource? previous = null;
            Task? previousEnded = null;
            Parked? release = null;
            Claim claim;
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                _entries.TryGetValue(id, out Entry? e);
                if (e?.Live is { } live && !waited)
                {
                    previous = live;
                    previousEnded = e.Ended.Task;
                    claim = default;
                }
                else
                {
                    Parked? parked = e?.Parked;
                    e?.Expiry?.Dispose();
                    if (generation == 0)
                    {
                        release = parked;
                        claim = new Claim(SessionStatus.New, null, parked is null ? null : "a new session (generation 0) reused the id");
                    }
                    else if (parked is null)
                        claim = new Claim(SessionStatus.Unknown, null, e is null
                            ? "no session with this id is parked here (this receiver restarted, or the parked session expired)"
                            : "the session's previous connection did not park (it failed after launch, or it did not end in time)");
                    else if (e!.Generation + 1 != generation)
                    {
                        release = parked;
                        claim = new Claim(SessionStatus.Unknown, null, $"the session is parked at generation {e.Generation}, the sender resumes generation {generation} (must be {e.Generation + 1})");
                    }
                    else if (MigrationLayout.Mismatch(layout, parked.Target.Memory) is { } mismatch)
                    {
                        release = parked;
                        claim = new Claim(SessionStatus.Unknown, null, $"the announced layout differs from the parked session's: {mismatch}");
                    }
                    else
                        claim = new Claim(SessionStatus.Resumed, parked, null);
                    e?.Ended.TrySetResult(); // anyone still waiting on the old connection
                    _entries[id] = new Entry { Generation = generation, Live = takeover };
                }
            }
            if (previous is not null)
            {
                _log?.Info("session.taking_over", connection, ("resume_session", Hex(id)), ("generation", generation));
                try { previous.Cancel(); } catch (ObjectDisposedException) { }
                try
                {
                    await previousEnded!.WaitAsync(TakeoverWait, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    _log?.Warn("session.takeover_timeout", connection, ("resume_session", Hex(id)), ("waited_s", TakeoverWait.TotalSeconds));
                }
                waited = true;
                continue;
            }
            if (release is not null) Release(release, connection, id, claim.Why ?? "released");
            if (claim.Status == SessionStatus.Resumed)
                _log?.Info("session.resumed_connection", connection, ("resume_session", Hex(id)), ("generation", generation));
            else if (claim.Status == SessionStatus.Unknown)
                _log?.Warn("session.resume_unknown", connection, ("resume_session", Hex(id)), ("generation", generation), ("reason", claim.Why));
            return claim;
        }
    }

    /// <summary>
    /// The live connection <paramref name="owner"/> of session <paramref name="id"/> failed at the transport level: keep its
    /// state under <paramref name="generation"/> for <see cref="KeepFor"/>. False (and the state released) when the
    /// connection no longer owns the session (a newer one took it over meanwhile) or the store is closed.
    /// </summary>
    public bool Park(UInt128 id, CancellationTokenSource owner, uint generation, Parked state, string connection, string why)
    {
        Entry? e;
        lock (_lock)
        {
            if (_disposed || !_entries.TryGetValue(id, out e) || e.Live != owner) e = null;
            else
            {
                e.Live = null;
                e.Parked = state;
                e.Generation = generation;
                e.Expiry = new Timer(_ => Expire(id, state), null, KeepFor, Timeout.InfiniteTimeSpan);
            }
        }
        if (e is null)
        {
            Release(state, connection, id, "the session was taken over or the service stopped");
            return false;
        }
        _log?.Info("session.parked", connection, ("resume_session", Hex(id)), ("generation", generation), ("keep_s", KeepFor.TotalSeconds),
            ("pages_applied", state.Memory.PagesApplied), ("error", why));
        e.Ended.TrySetResult();
        return true;
    }

    /// <summary>The live connection ended without parking (resumed the guest, or failed for good): forget the session.</summary>
    public void End(UInt128 id, CancellationTokenSource owner)
    {
        Entry? e = null;
        lock (_lock)
        {
            if (_entries.TryGetValue(id, out Entry? found) && found.Live == owner)
            {
                _entries.Remove(id);
                e = found;
            }
        }
        e?.Ended.TrySetResult();
    }

    private void Expire(UInt128 id, Parked state)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(id, out Entry? e) || !ReferenceEquals(e.Parked, state)) return;
            _entries.Remove(id);
            e.Expiry?.Dispose();
        }
        _log?.Warn("session.park_expired", null, ("resume_session", Hex(id)), ("kept_s", KeepFor.TotalSeconds));
        Release(state, null, id, null);
    }

    private void Release(Parked state, string? connection, UInt128 id, string? why)
    {
        try
        {
            state.Dispose();
        }
        catch (Exception e)
        {
            _log?.Warn("session.release_failed", connection, ("resume_session", Hex(id)), ("error", $"{e.GetType().Name}: {e.Message}"));
        }
        if (why is not null) _log?.Info("session.released", connection, ("resume_session", Hex(id)), ("reason", why));
    }

    /// <summary>Releases every parked session (the service stops).</summary>
    public void Dispose()
    {
        List<(UInt128, Parked)> parked = [];
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            foreach ((UInt128 id, Entry e) in _entries)
            {
                e.Expiry?.Dispose();
                if (e.Parked is { } p) parked.Add((id, p));
                e.Ended.TrySetResult();
            }
            _entries.Clear();
        }
        foreach ((UInt128 id, Parked p) in parked) Release(p, null, id, "the service stopped");
    }

    public static UInt128 Key(ReadOnlySpan<byte> sessionId) => System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(sessionId);

    public static string Hex(UInt128 id) => id.ToString("x32");
}
