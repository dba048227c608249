using System.Net;
using System.Net.Sockets;
using KvmPresync.Core;
using KvmPresync.Memory;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// The sender's data streams (protocol 1.3, <see cref="HelloOptions.MultiStream"/>): N − 1 more TCP connections that join the
/// authenticated main connection's session, and the stripes that split every page set across all N.
/// <code>
///  main (stream 0):  … AuthOk ─ StreamSetup{N, stripe} ◀ echo ─┐      each send of a page set (a round, the paused delta):
///  data i (1 … N−1): connect ─ StreamJoin{id, i, N, proof} ◀ AuthOk   stream s: PageBatch… (its stripes) ─ StreamMark(seq)
///                                                                     main:     PageBatch… ─ StreamMark(seq) ─ RoundEnd / FinalState
/// </code>
/// Linear page index i always travels on stream (i / stripe) mod N, so a newer copy of a page never overtakes an older one;
/// control frames stay on the main connection, behind the main StreamMark the receiver holds until every data stream has
/// delivered its mark. The streams' encoders share one last-sent hash table (each touches only its own pages) and hash and
/// send in parallel, one task per stream. A failed stream fails the send; the caller treats it as a lost connection.
/// </summary>
internal sealed class SenderStreams
{
    /// <summary>Pages per stripe: 1 MiB of 4 KiB pages, one full PageBatch of the default size.</summary>
    public const int StripePages = 256;

    private readonly SenderChannel _main;
    private readonly SenderChannel[] _data; // stream i at [i − 1]
    private readonly Socket[] _sockets;
    private readonly PageBatchEncoder[] _encoders; // stream 0 is the run's own encoder
    private readonly DirtyBitmap[] _parts;
    private readonly TimeSpan _completionTimeout;
    private ulong _sequence;

    private SenderStreams(SenderChannel main, SenderChannel[] data, Socket[] sockets, PageBatchEncoder mainEncoder, GuestMemoryMap memory,
        int batchPages, TimeSpan completionTimeout)
    {
        _main = main;
        _data = data;
        _sockets = sockets;
        _completionTimeout = completionTimeout;
        Count = data.Length + 1;
        _encoders = new PageBatchEncoder[Count];
        _encoders[0] = mainEncoder;
        for (int i = 1; i < Count; i++) _encoders[i] = new PageBatchEncoder(memory, data[i - 1].Writer, batchPages, compressor: null, sharedHashes: mainEncoder.SentHashes);
        _parts = new DirtyBitmap[Count];
        for (int i = 0; i < Count; i++) _parts[i] = new DirtyBitmap(memory.PageCount);
    }

    /// <summary>Streams in all, the main connection included.</summary>
    public int Count { get; }

    /// <summary>Bytes the data streams' transports took (the main connection's are its own writer's).</summary>
    public long DataBytesWritten
    {
        get
        {
            long sum = 0;
            foreach (SenderChannel c in _data) sum += c.Writer.BytesWritten;
            return sum;
        }
    }

    /// <summary>
    /// After the handshake, on the main connection (its reader not started yet): StreamSetup and its echo, then
    /// <see cref="PresyncOptions.Streams"/> − 1 connections, each opened like the main one (TLS when configured, the same rate-limit
    /// bucket), joined with a proof bound to the main connection's nonces, and answered AuthOk. Throws what failed; nothing
    /// stays open then.
    /// </summary>
    public static async Task<SenderStreams> OpenAsync(SenderChannel main, HandshakeResult session, PreSharedKey key, PresyncOptions options,
        PageBatchEncoder mainEncoder, GuestMemoryMap memory, Func<int, CancellationToken, Task<Socket>> connect, Func<ulong> nowNs, CancellationToken ct)
    {
        int n = options.Streams;
        var setup = new StreamSetup((uint)n, StripePages);
        await main.Writer.WriteAsync(setup, ct).ConfigureAwait(false);
        StreamSetup echo = await main.Reader.ReadExpectedAsync<StreamSetup>(ct).ConfigureAwait(false);
        if (echo != setup)
            throw new ProtocolException(ProtocolError.InvalidField, "StreamSetup", $"{echo.Streams}/{echo.StripePages}",
                $"the receiver answered StreamSetup({setup.Streams} streams, stripe {setup.StripePages}) with ({echo.Streams}, {echo.StripePages})");
        byte[] joinId = HandshakeTranscript.StreamJoinId(key, session.Nonces);
        var channels = new SenderChannel?[n - 1];
        var sockets = new Socket?[n - 1];
        try
        {
            await Task.WhenAll(Enumerable.Range(1, n - 1).Select(async i =>
            {
                Socket socket = sockets[i - 1] = await connect(i, ct).ConfigureAwait(false);
                SenderChannel channel = channels[i - 1] = await SenderChannel.OpenAsync(socket, options, nowNs, ct, main.Bucket).ConfigureAwait(false);
                channel.Reader.UseSession(session.Layout, session.Options);
                channel.Writer.UseSession(session.Layout, session.Options);
                byte[] proof = HandshakeTranscript.StreamJoinProof(key, session.Nonces, joinId, (uint)i, (uint)n);
                await channel.Writer.WriteAsync(new StreamJoin(joinId, (uint)i, (uint)n, proof), ct).ConfigureAwait(false);
                await channel.Reader.ReadExpectedAsync<AuthOk>(ct).ConfigureAwait(false); // a refusal is thrown as the receiver's Abort
            })).ConfigureAwait(false);
        }
        catch
        {
            for (int i = 0; i < n - 1; i++)
            {
                if (channels[i] is { } c) { await c.CloseAsync().ConfigureAwait(false); c.Dispose(); }
                sockets[i]?.Dispose();
            }
            throw;
        }
        var streams = new SenderStreams(main, channels!, sockets!, mainEncoder, memory, options.BatchPages, options.ResumeTimeout);
        foreach (SenderChannel c in streams._data) c.StartReading(ct); // only an Abort or the end of the connection is expected
        return streams;
    }

    /// <summary>The connector for data streams: the address the main connection reached.</summary>
    public static Func<int, CancellationToken, Task<Socket>> SameAddressAs(Socket main)
    {
        EndPoint remote = main.RemoteEndPoint ?? throw new InvalidOperationException("the main connection has no remote address");
        return (_, ct) => remote is IPEndPoint ip ? MigrationSocket.ConnectAsync(ip, ct) : throw new NotSupportedException($"data streams need an IP endpoint, not {remote}");
    }

    /// <summary>A harvest was taken: every data stream's encoder marks what it sent since the previous one and is dirty again (the main one is told by the run).</summary>
    public void OnHarvest(DirtyBitmap harvest)
    {
        for (int i = 1; i < Count; i++) _encoders[i].OnHarvest(harvest);
    }

    /// <summary>
    /// Sends every page set in <paramref name="pages"/>, each on its stripe's stream, all streams at once; then a StreamMark on
    /// every stream (data streams first, the main connection's last). Returns when every transport took its pages. With
    /// <paramref name="skipUnchanged"/> off (the paused delta) the data streams' MSG_ZEROCOPY completions are awaited too
    /// (the main connection's are the caller's).
    /// </summary>
    public async Task<SendCounts> SendAsync(ulong round, DirtyBitmap pages, bool skipUnchanged, CancellationToken ct)
    {
        ThrowIfFailed();
        Split(pages);
        ulong sequence = ++_sequence;
        using var failFast = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var sends = new Task<SendCounts>[Count];
        for (int s = 0; s < Count; s++)
        {
            int stream = s;
            sends[s] = Task.Run(() => SendStreamAsync(stream, round, sequence, skipUnchanged, failFast), CancellationToken.None);
        }
        try
        {
            await Task.WhenAll(sends).ConfigureAwait(false);
        }
        catch
        {
            // the first real failure, not a sibling's cancellation it caused
            Exception? first = sends.Where(t => t.IsFaulted).Select(t => t.Exception!.GetBaseException())
                .FirstOrDefault(e => e is not OperationCanceledException);
            if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
            throw;
        }
        await _main.Writer.WriteAsync(new StreamMark(sequence), ct).ConfigureAwait(false);
        long sent = 0, unchanged = 0, zero = 0;
        foreach (Task<SendCounts> t in sends)
        {
            sent += t.Result.Sent;
            unchanged += t.Result.Unchanged;
            zero += t.Result.Zero;
        }
        return new SendCounts(sent, unchanged, zero);
    }

    private async Task<SendCounts> SendStreamAsync(int stream, ulong round, ulong sequence, bool skipUnchanged, CancellationTokenSource failFast)
    {
        try
        {
            SendCounts counts = await _encoders[stream].SendAsync(round, _parts[stream], failFast.Token, skipUnchanged).ConfigureAwait(false);
            if (stream == 0) return counts;
            SenderChannel channel = _data[stream - 1];
            if (!skipUnchanged && channel.ZeroCopy is { } zeroCopy) await zeroCopy.WaitForCompletionsAsync(_completionTimeout, failFast.Token).ConfigureAwait(false);
            await channel.Writer.WriteAsync(new StreamMark(sequence), failFast.Token).ConfigureAwait(false);
            return counts;
        }
        catch
        {
            failFast.Cancel(); // the other streams stop too: the send as a whole failed
            throw;
        }
    }

    /// <summary>Each stream's share of <paramref name="pages"/>, by whole 64-page words (a stripe is a multiple of 64 pages).</summary>
    private void Split(DirtyBitmap pages)
    {
        foreach (DirtyBitmap part in _parts) part.Clear();
        ReadOnlySpan<ulong> words = pages.ReadOnlyWords;
        const int wordsPerStripe = StripePages / 64;
        for (int w = 0; w < words.Length; w++)
        {
            if (words[w] == 0) continue;
            _parts[w / wordsPerStripe % Count].Words[w] = words[w];
        }
    }

    /// <summary>Throws the receiver's Abort on a data stream, or that it closed one.</summary>
    public void ThrowIfFailed()
    {
        for (int i = 0; i < _data.Length; i++)
        {
            try
            {
                _data[i].ThrowIfPeerEnded();
            }
            catch (IOException e)
            {
                throw new IOException($"data stream {i + 1} of {Count}: {e.Message}", e);
            }
        }
    }

    /// <summary>Closes the data streams (the main connection is the caller's).</summary>
    public async Task CloseAsync()
    {
        foreach (SenderChannel c in _data) await c.CloseAsync().ConfigureAwait(false);
        foreach (SenderChannel c in _data) c.Dispose();
        foreach (Socket s in _sockets) s.Dispose();
    }
}
