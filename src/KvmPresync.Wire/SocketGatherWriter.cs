using KvmPresync.Memory;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace KvmPresync.Wire;

/// <summary>
/// Gather writes on a connected stream <see cref="Socket"/>. Adjacent segments are merged without copying;
/// consecutive array-backed runs go out in one <c>Socket.SendAsync(IList&lt;ArraySegment&lt;byte&gt;&gt;)</c>
/// (one sendmsg with an iovec per run). Runs backed by native memory (<see cref="UnmanagedMemoryManager"/>)
/// cannot be expressed as ArraySegments, so each goes out with its own <c>SendAsync(ReadOnlyMemory)</c> —
/// still straight from guest memory, but one syscall per run; true iovecs over native memory need a
/// sendmsg transport (the native shim's zero-copy socket).
/// <para>
/// With a <see cref="TokenBucket"/>, each frame waits for tokens for all its bytes before the first send: the
/// link bound (≤ burst + rate·t) holds, but pacing is per frame; <see cref="RateLimitedStream"/> paces in 64 KiB
/// chunks instead.
/// </para>
/// </summary>
public sealed class SocketGatherWriter : IGatherWriter
{
    private readonly Socket _socket;
    private readonly TokenBucket? _rateLimit;
    private readonly List<ReadOnlyMemory<byte>> _runs = [];
    private readonly List<ArraySegment<byte>> _arrays = [];

    public SocketGatherWriter(Socket socket, TokenBucket? rateLimit = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _socket = socket;
        _rateLimit = rateLimit;
    }

    /// <summary>Number of send calls issued (for tests and benchmarks that count syscalls).</summary>
    public long SendCalls { get; private set; }

    public async ValueTask WriteAsync(IReadOnlyList<ReadOnlyMemory<byte>> segments, CancellationToken cancellationToken)
    {
        _runs.Clear();
        SegmentRuns.Merge(segments, _runs);
        try
        {
            if (_rateLimit is not null)
            {
                long total = 0;
                foreach (ReadOnlyMemory<byte> run in _runs) total += run.Length;
                await _rateLimit.WaitAsync(total, cancellationToken).ConfigureAwait(false);
            }
            foreach (ReadOnlyMemory<byte> run in _runs)
            {
                if (MemoryMarshal.TryGetArray(run, out ArraySegment<byte> array))
                {
                    _arrays.Add(array);
                    continue;
                }
                await SendArraysAsync(cancellationToken).ConfigureAwait(false);
                await SendMemoryAsync(run, cancellationToken).ConfigureAwait(false);
            }
            await SendArraysAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _runs.Clear();
            _arrays.Clear();
        }
    }

    private async ValueTask SendArraysAsync(CancellationToken cancellationToken)
    {
        while (_arrays.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            SendCalls++;
            int sent = await _socket.SendAsync(_arrays, SocketFlags.None).ConfigureAwait(false);
            // A stream socket may accept fewer bytes than offered: drop what went out and retry the rest.
            while (sent > 0)
            {
                ArraySegment<byte> head = _arrays[0];
                if (sent >= head.Count)
                {
                    sent -= head.Count;
                    _arrays.RemoveAt(0);
                }
                else
                {
                    _arrays[0] = head.Slice(sent);
                    sent = 0;
                }
            }
        }
    }

    private async ValueTask SendMemoryAsync(ReadOnlyMemory<byte> run, CancellationToken cancellationToken)
    {
        while (!run.IsEmpty)
        {
            SendCalls++;
            int sent = await _socket.SendAsync(run, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            run = run[sent..];
        }
    }
}
