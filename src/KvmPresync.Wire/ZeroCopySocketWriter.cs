using KvmPresync.Memory;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using KvmPresync.Wire.Interop;

namespace KvmPresync.Wire;

/// <summary>
/// Gather writes on a connected TCP <see cref="Socket"/> through the native shim's <c>sendmsg</c>: a frame's
/// segments — the managed header + descriptors and the page payloads pointing into guest memory — go out as ONE
/// sendmsg per up to 1024 iovecs, with no copy in user space. Partial sends are resumed where they stopped.
/// <para>
/// Zero-copy mode (<see cref="ZeroCopyWriterOptions.ZeroCopy"/>): stretches of payload in native memory
/// (<see cref="UnmanagedMemoryManager"/>) of at least <see cref="ZeroCopyWriterOptions.ZeroCopyThreshold"/> bytes
/// go with MSG_ZEROCOPY, so the kernel pins the guest pages instead of copying them. Managed segments never do:
/// the kernel reads zero-copy pages until the send completes, but the frame header lives in a pooled array
/// that <see cref="FrameWriter"/> reuses as soon as the write returns (and the GC may move an unpinned array).
/// So a frame is two sendmsg calls — the managed head with MSG_MORE (copied), then the guest pages with
/// MSG_ZEROCOPY — and the bytes on the wire are unchanged.
/// </para>
/// <para>
/// The correctness rule of MSG_ZEROCOPY: a page may be read by the kernel after sendmsg returned, until its
/// completion. In live rounds this is harmless — a page the guest changes meanwhile is dirty and is sent again.
/// In the paused final phase call <see cref="WaitForCompletionsAsync"/> before declaring memory delivered.
/// Unmapping guest memory with sends outstanding is memory-safe (the kernel holds page references).
/// Loopback (and devices without scatter-gather) copy anyway: the kernel reports it and <see cref="ZeroCopyStats.Copied"/> counts it.
/// </para>
/// <para>
/// Sends never block the thread: sendmsg is non-blocking, and when the socket buffer is full the writer waits
/// for room through the runtime's socket engine by sending the rest of the current run (in a zero-copy group:
/// only its next ≤ 4 KiB) with <c>Socket.SendAsync</c>, then continues with sendmsg. One writer per socket; writes must not overlap (<see cref="FrameWriter"/> serializes
/// them). Does not own the socket.
/// </para>
/// </summary>
public sealed class ZeroCopySocketWriter : IGatherWriter, IDisposable
{
    private const int EAGAIN = 11;
    private const int ENOBUFS = 105;
    private const int WaitSliceBytes = 4096;

    private readonly Socket _socket;
    private readonly SafeSocketHandle _handle;
    private readonly int _fd;
    private readonly bool _zeroCopy;
    private readonly int _threshold;
    private readonly TokenBucket? _rateLimit;
    private readonly ZeroCopyIovecs _iovecs = new();
    private readonly ZeroCopyCompletions _completions;
    private int _busy;
    private bool _disposed;
    private long _payloadBytes, _sendCalls, _zeroCopyBytes, _bytesSent, _waits, _fallbacks;

    public ZeroCopySocketWriter(Socket socket, ZeroCopyWriterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (socket.SocketType != SocketType.Stream)
            throw new ArgumentException($"a stream socket is required, got {socket.SocketType}", nameof(socket));
        options ??= new ZeroCopyWriterOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(options.ZeroCopyThreshold);
        _socket = socket;
        _handle = socket.SafeHandle;
        _fd = (int)_handle.DangerousGetHandle();
        _zeroCopy = options.ZeroCopy;
        _threshold = options.ZeroCopyThreshold;
        _rateLimit = options.RateLimit;
        _completions = new ZeroCopyCompletions(_fd);
        if (_zeroCopy)
        {
            int ret = SocketNative.SockEnableZerocopy(_fd);
            if (ret < 0)
                throw new IOException($"{ZeroCopyErrors.Fail("setsockopt(SO_ZEROCOPY)", -ret).Message} " +
                    "MSG_ZEROCOPY needs Linux 4.14 or later and a TCP socket; create the writer with ZeroCopy = false to send with kernel copies.");
        }
    }

    /// <summary>Whether payloads go out with MSG_ZEROCOPY.</summary>
    public bool ZeroCopy => _zeroCopy;

    /// <summary>Counters so far (completions as of the last reap; <see cref="FlushAsync"/> reaps).</summary>
    public ZeroCopyStats Stats => new(
        _completions.Issued, _completions.Completed, _completions.Copied, Volatile.Read(ref _payloadBytes),
        Volatile.Read(ref _sendCalls), Volatile.Read(ref _zeroCopyBytes), Volatile.Read(ref _bytesSent),
        Volatile.Read(ref _waits), Volatile.Read(ref _fallbacks));

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WriteAsync(IReadOnlyList<ReadOnlyMemory<byte>> segments, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(segments);
        Enter();
        bool addedRef = false;
        try
        {
            _iovecs.Load(segments);
            if (_rateLimit is not null && _iovecs.TotalBytes > 0)
                await _rateLimit.WaitAsync(_iovecs.TotalBytes, cancellationToken).ConfigureAwait(false);
            _handle.DangerousAddRef(ref addedRef); // the fd cannot be closed and reused under a sendmsg
            _iovecs.Pin();
            int start = 0;
            while (start < _iovecs.Count)
            {
                int end = _iovecs.NextGroup(start, _zeroCopy, _threshold, out bool zeroCopyGroup);
                await SendGroupAsync(start, end, zeroCopyGroup, last: end == _iovecs.Count, cancellationToken).ConfigureAwait(false);
                start = end;
            }
        }
        finally
        {
            _iovecs.Release(); // unpin and drop references into guest memory
            if (addedRef) _handle.DangerousRelease();
            Exit();
        }
    }

    /// <summary>Reaps the completions queued so far (never blocks). Sends themselves are never buffered here.</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            if (_zeroCopy) _completions.Reap();
        }
        finally
        {
            Exit();
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Waits until the kernel completed every MSG_ZEROCOPY send issued so far — after it returns, no guest page
    /// handed to this writer is read by the kernel any more. Use it in the paused final phase before the
    /// memory digest. Throws <see cref="TimeoutException"/> (naming how many are outstanding) after
    /// <paramref name="timeout"/>. Returns at once when zero copy is off.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WaitForCompletionsAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        Enter();
        try
        {
            if (_zeroCopy) await _completions.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Reaps what has completed (best effort) and refuses further writes; does not close the socket or wait.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        if (_zeroCopy && Volatile.Read(ref _busy) == 0 && !_handle.IsClosed)
        {
            try
            {
                _completions.Reap();
            }
            catch (IOException)
            {
                // The connection is gone; nothing left to account for.
            }
        }
        _disposed = true;
    }

    private async ValueTask SendGroupAsync(int start, int end, bool zeroCopyGroup, bool last, CancellationToken cancellationToken)
    {
        int index = start, offset = 0;
        bool copyThisCall = false;
        while (index < end)
        {
            cancellationToken.ThrowIfCancellationRequested();
            bool zeroCopy = zeroCopyGroup && !copyThisCall;
            copyThisCall = false;
            long sent = SendOnce(index, offset, end, zeroCopy, last);
            if (sent > 0)
            {
                Account(ref index, ref offset, sent);
                if (zeroCopy)
                {
                    _completions.CountIssued();
                    _zeroCopyBytes += sent;
                    _completions.Reap();
                }
                continue;
            }
            int errno = (int)-sent;
            if (sent == 0 || errno == EAGAIN)
            {
                (index, offset) = await WaitForRoomAsync(index, offset, zeroCopyGroup, cancellationToken).ConfigureAwait(false);
                continue;
            }
            if (errno == ENOBUFS && zeroCopy)
            {
                // Too many completions queued or too many pages pinned: reap and retry, or copy this call.
                if (_completions.Reap() == 0)
                {
                    copyThisCall = true;
                    _fallbacks++;
                }
                continue;
            }
            throw ZeroCopyErrors.Fail("sendmsg on the migration socket", errno);
        }
    }

    private unsafe long SendOnce(int index, int offset, int end, bool zeroCopy, bool last)
    {
        int count = _iovecs.Fill(index, offset, end);
        uint flags = SocketNative.SendDontWait;
        if (zeroCopy) flags |= SocketNative.SendZeroCopy;
        if (!last || index + count < end) flags |= SocketNative.SendMore; // more of this frame follows
        _sendCalls++;
        // Safe: the iovecs point into runs pinned by _iovecs.Pin() until Release(), and the iovec array is pinned.
        return SocketNative.SockSendmsg(_fd, _iovecs.Iovecs, (uint)count, flags);
    }

    /// <summary>
    /// The socket buffer is full: let the runtime's socket engine wait for room while it sends the rest of the
    /// current run — only its next 4 KiB in a zero-copy group, so the bulk stays on the MSG_ZEROCOPY path.
    /// </summary>
    private async ValueTask<(int Index, int Offset)> WaitForRoomAsync(int index, int offset, bool zeroCopyGroup, CancellationToken cancellationToken)
    {
        ReadOnlyMemory<byte> next = _iovecs.Remainder(index, offset);
        if (zeroCopyGroup) next = next[..Math.Min(next.Length, WaitSliceBytes)];
        _waits++;
        _sendCalls++;
        int sent;
        try
        {
            sent = await _socket.SendAsync(next, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new IOException($"send (waiting for room in the socket buffer) failed: {e.Message} ({e.SocketErrorCode}). " +
                "The receiver closed the connection or the link failed; the frame was not delivered.", e);
        }
        Account(ref index, ref offset, sent);
        return (index, offset);
    }

    private void Account(ref int index, ref int offset, long sent)
    {
        _bytesSent += sent;
        _payloadBytes += _iovecs.Advance(ref index, ref offset, sent);
    }

    private void Enter()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Interlocked.Exchange(ref _busy, 1) != 0)
            throw new InvalidOperationException("a write or completion wait is already in progress on this writer; writes must not overlap (FrameWriter serializes them)");
    }

    private void Exit() => Volatile.Write(ref _busy, 0);
}
