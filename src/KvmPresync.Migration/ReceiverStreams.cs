using System.Security.Cryptography;
using KvmPresync.Core;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// The data streams of one receiving session (protocol 1.3, <see cref="HelloOptions.MultiStream"/>), made when its main
/// connection's StreamSetup arrives and registered in <see cref="StreamJoins"/> under the join id both sides derive from
/// the main connection's nonces. Each data connection's first frame is a StreamJoin; <see cref="Join"/> checks its proof,
/// index and count before the connection may write a single page. Pages land in the session's <see cref="ReceivedMemory"/>
/// from every stream at once (each page always on the same stream: <see cref="StreamSetup.StreamOf"/>).
/// <code>
///  main:   … StreamSetup ─ PageBatch… StreamMark(n) ─ RoundEnd        data i:  StreamJoin ─ PageBatch… StreamMark(n) …
///                          └ wait until every data stream delivered mark ≥ n, then handle RoundEnd (Ack) / FinalState
/// </code>
/// A data stream that fails (closed, refused frame, I/O error) fails the session: <see cref="Failed"/> is cancelled and the
/// main connection's session ends the way a failed main connection ends it. Before the main session verifies, parks or
/// releases the memory it <see cref="SealAsync">seals</see> the set: no more joins, every data stream stopped and ended,
/// so nothing writes into guest memory after that.
/// </summary>
internal sealed class ReceiverStreams
{
    /// <summary>How long sealing waits for the data streams' sessions to end (they are cancelled; this is a safety bound).</summary>
    private static readonly TimeSpan EndWait = TimeSpan.FromSeconds(10);

    private readonly object _lock = new();
    private readonly StreamJoins _registry;
    private readonly PreSharedKey _key;
    private readonly ReadOnlyMemory<byte> _nonces;
    private readonly Slot[] _slots; // index 1 … Count − 1
    private readonly CancellationTokenSource _failed = new();
    private TaskCompletionSource _marked = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _sealed;

    private sealed class Slot
    {
        public bool Joined;
        public ulong Mark;
        public CancellationTokenSource? Stop;
        public readonly TaskCompletionSource Ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public ReceiverStreams(StreamJoins registry, PreSharedKey key, ReadOnlyMemory<byte> nonces, StreamSetup setup, ReceivedMemory memory,
        MemoryLayout layout, HelloOptions options, string sessionId)
    {
        _registry = registry;
        _key = key;
        _nonces = nonces;
        Count = (int)setup.Streams;
        StripePages = (int)setup.StripePages;
        Memory = memory;
        Layout = layout;
        Options = options;
        SessionId = sessionId;
        JoinId = HandshakeTranscript.StreamJoinId(key, nonces);
        _slots = new Slot[Count];
        for (int i = 1; i < Count; i++) _slots[i] = new Slot();
    }

    /// <summary>Streams in all, the main connection included.</summary>
    public int Count { get; }
    public int StripePages { get; }
    public ReceivedMemory Memory { get; }
    public MemoryLayout Layout { get; }
    public HelloOptions Options { get; }

    /// <summary>The main connection's session id in the service's log (s1, s2, …).</summary>
    public string SessionId { get; }
    public byte[] JoinId { get; }

    /// <summary>Cancelled when a data stream failed (<see cref="Failure"/> says how); the main session's deadline is linked to it.</summary>
    public CancellationToken Failed => _failed.Token;

    /// <summary>Why a data stream failed; null while none has.</summary>
    public string? Failure { get; private set; }

    public bool Sealed { get { lock (_lock) return _sealed; } }

    /// <summary>Makes the set joinable (before StreamSetup is echoed, so a join cannot arrive before it is known).</summary>
    public void Register() => _registry.Add(this);

    /// <summary>
    /// A data connection's StreamJoin: checks the proof (constant time), the stream count and the index, claims the index.
    /// Throws what to Abort with: <see cref="AuthenticationFailedException"/> for a proof that does not verify,
    /// <see cref="ReceiverFailedException"/>(ProtocolViolation) for a wrong count, a duplicate index or a sealed session.
    /// <paramref name="stop"/> is cancelled to end that connection's session when this one is sealed.
    /// </summary>
    public void Join(StreamJoin join, CancellationTokenSource stop)
    {
        byte[] expected = HandshakeTranscript.StreamJoinProof(_key, _nonces, join.JoinId.Span, join.Index, join.Streams);
        if (!CryptographicOperations.FixedTimeEquals(expected, join.Proof.Span))
            throw new AuthenticationFailedException("StreamJoin.proof",
                "StreamJoin: the proof did not verify — the joining connection holds a different pre-shared key, or the join was forged or altered");
        if (join.Streams != Count)
            throw new ReceiverFailedException(AbortReason.ProtocolViolation,
                $"StreamJoin for stream {join.Index} of {join.Streams}, but session {SessionId} set up {Count} streams; connection closed");
        lock (_lock)
        {
            if (_sealed)
                throw new ReceiverFailedException(AbortReason.ProtocolViolation, $"StreamJoin for stream {join.Index}: session {SessionId} has ended its data streams; connection closed");
            Slot slot = _slots[join.Index];
            if (slot.Joined)
                throw new ReceiverFailedException(AbortReason.ProtocolViolation,
                    $"StreamJoin for stream {join.Index} of session {SessionId}, which has already joined (a duplicate index); connection closed");
            slot.Joined = true;
            slot.Stop = stop;
        }
        _registry.StreamJoined();
    }

    /// <summary>Throws unless every page of <paramref name="batch"/> belongs to stream <paramref name="stream"/> (the rule that keeps a page's copies in order).</summary>
    public void CheckStripe(PageBatch batch, int stream)
    {
        ReadOnlySpan<PageDescriptor> descriptors = batch.Descriptors.Span;
        for (int i = 0; i < descriptors.Length; i++)
        {
            long index = Layout.Locate(descriptors[i].PageNumber).LinearIndex;
            int owner = StreamSetup.StreamOf(index, Count, StripePages);
            if (owner != stream)
                throw new ProtocolException(ProtocolError.InvalidField, $"PageBatch descriptor {i}.pageNumber", descriptors[i].PageNumber,
                    $"PageBatch descriptor {i}: page {descriptors[i].PageNumber} (index {index}) belongs to stream {owner} of {Count} (stripes of {StripePages} pages), " +
                    $"not to stream {stream} it arrived on");
        }
    }

    /// <summary>Data stream <paramref name="stream"/> delivered (and applied) everything before its mark <paramref name="sequence"/>.</summary>
    public void Mark(int stream, ulong sequence)
    {
        TaskCompletionSource wake;
        lock (_lock)
        {
            Slot slot = _slots[stream];
            if (sequence <= slot.Mark)
                throw new ProtocolException(ProtocolError.InvalidField, "StreamMark.sequence", sequence,
                    $"StreamMark on stream {stream}: sequence {sequence} after {slot.Mark} (marks must increase)");
            slot.Mark = sequence;
            wake = _marked;
            _marked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        wake.TrySetResult();
    }

    private long _progress; // page batches the data streams applied (the main connection's wait re-arms its deadline on progress)

    /// <summary>A data stream applied a page batch.</summary>
    public void Progress() => Interlocked.Increment(ref _progress);

    /// <summary>
    /// The main connection's StreamMark: returns once every data stream delivered a mark ≥ <paramref name="sequence"/>. A round
    /// on the data streams may take longer than one frame's idle timeout, so <paramref name="rearm"/> (the main connection's
    /// idle deadline) is called whenever the data streams made progress: only data streams that stall time the session out.
    /// </summary>
    public async Task WaitForMarksAsync(ulong sequence, Action rearm, CancellationToken ct)
    {
        long seen = Interlocked.Read(ref _progress);
        while (true)
        {
            Task next;
            lock (_lock)
            {
                bool all = true;
                for (int i = 1; i < Count; i++) all &= _slots[i].Mark >= sequence;
                if (all) return;
                next = _marked.Task;
            }
            await Task.WhenAny(next, Task.Delay(ProgressPoll, ct)).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            long progress = Interlocked.Read(ref _progress);
            if (progress != seen)
            {
                seen = progress;
                rearm();
            }
        }
    }

    private static readonly TimeSpan ProgressPoll = TimeSpan.FromSeconds(1);

    /// <summary>A data stream failed: the session fails with it (unless it was sealed already, i.e. the stream was being closed).</summary>
    public void StreamFailed(int stream, string why)
    {
        lock (_lock)
        {
            if (_sealed || Failure is not null) return;
            Failure = $"data stream {stream} of {Count} failed: {why}";
        }
        _failed.Cancel();
    }

    /// <summary>Data stream <paramref name="stream"/>'s session ended (its connection is being closed).</summary>
    public void Ended(int stream)
    {
        if (_slots[stream].Ended.TrySetResult()) _registry.StreamLeft();
    }

    /// <summary>
    /// No more joins; every data stream's session is stopped and waited for. After this nothing writes into the memory, so the
    /// main session may verify, park or release it. Idempotent.
    /// </summary>
    public async Task SealAsync()
    {
        var waits = new List<Task>();
        lock (_lock)
        {
            if (!_sealed)
            {
                _sealed = true;
                _registry.Remove(this);
            }
            for (int i = 1; i < Count; i++)
            {
                if (!_slots[i].Joined) continue;
                try { _slots[i].Stop?.Cancel(); } catch (ObjectDisposedException) { }
                waits.Add(_slots[i].Ended.Task);
            }
        }
        Task all = Task.WhenAll(waits);
        if (await Task.WhenAny(all, Task.Delay(EndWait)).ConfigureAwait(false) != all)
            throw new InvalidOperationException($"the data streams of session {SessionId} did not end within {EndWait.TotalSeconds:0} s of being closed");
    }
}

/// <summary>
/// The sessions of a receiver that await data streams (protocol 1.3 MultiStream), by join id. Owned by a
/// <see cref="ReceiveService"/>; an entry lives from its main connection's StreamSetup until that session seals it. Thread-safe.
/// </summary>
internal sealed class StreamJoins
{
    private readonly object _lock = new();
    private readonly Dictionary<UInt128, ReceiverStreams> _sessions = [];

    public void Add(ReceiverStreams streams)
    {
        lock (_lock)
            if (!_sessions.TryAdd(ParkedSessions.Key(streams.JoinId), streams))
                throw new ReceiverFailedException(AbortReason.ProtocolViolation, "StreamSetup: a session with the same join id is already set up (reused nonces)");
    }

    public void Remove(ReceiverStreams streams)
    {
        lock (_lock)
        {
            UInt128 key = ParkedSessions.Key(streams.JoinId);
            if (_sessions.TryGetValue(key, out ReceiverStreams? current) && current == streams) _sessions.Remove(key);
        }
    }

    /// <summary>The session a join names; null when none awaits data streams under that id (never was, or ended).</summary>
    public ReceiverStreams? Find(ReadOnlySpan<byte> joinId)
    {
        if (joinId.Length != WireLimits.SessionIdBytes) return null;
        lock (_lock) return _sessions.GetValueOrDefault(ParkedSessions.Key(joinId));
    }

    private int _activeStreams;

    /// <summary>Data connections joined and not yet ended: they belong to a session, and do not count as sessions of their own.</summary>
    public int ActiveStreams => Volatile.Read(ref _activeStreams);

    internal void StreamJoined() => Interlocked.Increment(ref _activeStreams);

    internal void StreamLeft() => Interlocked.Decrement(ref _activeStreams);

    /// <summary>Sessions awaiting or carrying data streams now.</summary>
    public int Count { get { lock (_lock) return _sessions.Count; } }
}
