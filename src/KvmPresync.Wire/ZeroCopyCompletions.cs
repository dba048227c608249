using System.Diagnostics;
using KvmPresync.Wire.Interop;

namespace KvmPresync.Wire;

/// <summary>
/// Bookkeeping of MSG_ZEROCOPY sends on one socket: how many were issued, and the completions the kernel
/// queued on the socket's error queue (read without blocking by <see cref="Reap"/>). A send is complete when
/// the kernel has released its pages: until then it may still read them (for transmission or retransmission).
/// </summary>
internal sealed class ZeroCopyCompletions
{
    private readonly int _fd;
    private KpZcStats _stats;

    public ZeroCopyCompletions(int fd) => _fd = fd;

    public long Issued { get; private set; }

    public long Completed => (long)_stats.CompletedSends;

    public long Copied => (long)_stats.CopiedSends;

    public long Outstanding => Issued - Completed;

    /// <summary>Counts one sendmsg with MSG_ZEROCOPY that sent bytes (the kernel gave it a sequence number).</summary>
    public void CountIssued() => Issued++;

    /// <summary>Reads every queued completion without blocking; returns the notifications read.</summary>
    public unsafe int Reap()
    {
        int ret;
        // Safe: _stats is a field of this object, pinned by `fixed` for the duration of the call.
        fixed (KpZcStats* stats = &_stats)
            ret = SocketNative.SockReapZerocopy(_fd, stats);
        if (ret < 0) throw ZeroCopyErrors.Fail("recvmsg(MSG_ERRQUEUE) reaping zero-copy completions", -ret);
        return ret;
    }

    /// <summary>
    /// Waits until every issued send completed: reaps, then sleeps in poll(2) on the socket for at most 1 ms at a
    /// time (a queued completion wakes it at once), so the calling thread is never blocked for longer than that.
    /// </summary>
    public async ValueTask WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            Reap();
            if (Outstanding <= 0) return;
            cancellationToken.ThrowIfCancellationRequested();
            if (Stopwatch.GetTimestamp() >= deadline)
                throw new TimeoutException(
                    $"zero-copy sends not completed: {Outstanding} of {Issued} still held by the kernel after {timeout.TotalMilliseconds:0} ms. " +
                    "The kernel may still read those pages, so the final phase must not treat them as delivered; " +
                    "check that the receiver is reading (completions arrive only after the peer acknowledges the data).");
            int events = SocketNative.SockPoll(_fd, SocketNative.PollErr, 1);
            if (events < 0) throw ZeroCopyErrors.Fail("poll(POLLERR) waiting for zero-copy completions", -events);
            // POLLERR or POLLHUP with nothing to reap is a socket error or hang-up: completions still arrive once
            // the kernel frees the queued data, so wait without spinning.
            if (events != 0 && Reap() == 0) await Task.Delay(1, cancellationToken).ConfigureAwait(false);
            else if (events == 0) await Task.Yield();
        }
    }
}
