using System.Net;
using System.Net.Sockets;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Memory;
using KvmPresync.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// Resumable presync (protocol 1.1) in process, ScriptedGuest → proxy → <see cref="ReceiveService"/>: a cut connection and a
/// silently dead link are survived (the session resumes, only what the receiver lacks is resent, the migration verifies);
/// a restarted receiver makes the sender start over (and say so); SessionStart with an unknown id or a wrong generation is
/// answered Unknown, a wrong proof is refused.
/// </summary>
public sealed class ResumablePresyncTests
{
    private static readonly PreSharedKey Key = MigrationHarness.Key(7);

    private sealed class Service : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _run;
        private readonly List<string> _log;

        public Service(List<string> log, TimeSpan? parkFor = null)
        {
            _log = log;
            Listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
            Receiver = new ReceiveService(Key, layout => new BlankTarget(layout), new ReceiveServiceOptions
            {
                HostAvailableBytes = () => 1L << 30,
                ParkFor = parkFor ?? TimeSpan.FromMinutes(1),
            }, new ServiceLog(line => { lock (_log) _log.Add(line); }));
            Receiver.SessionEnded += e => e.ResumedTarget?.Dispose();
            _run = Receiver.RunAsync(Listener, _stop.Token);
        }

        public Socket Listener { get; }
        public ReceiveService Receiver { get; }
        public IPEndPoint Endpoint => (IPEndPoint)Listener.LocalEndPoint!;

        public async ValueTask DisposeAsync()
        {
            if (!_stop.IsCancellationRequested)
            {
                _stop.Cancel();
                await _run.WaitAsync(TimeSpan.FromSeconds(30));
            }
            Listener.Dispose();
        }
    }

    private static string Text(List<string> log) { lock (log) return string.Join('\n', log); }

    private static PresyncOptions Options(IPEndPoint via) => new()
    {
        Engine = new SyncEngineOptions { Policy = SyncPolicy.Predict, LinkBitsPerSecond = 1e9, RoundInterval = TimeSpan.FromMilliseconds(50) },
        RateLimitBitsPerSecond = 0,
        Reconnect = new ReconnectOptions(ct => MigrationSocket.ConnectAsync(via, ct))
        {
            LivenessTimeout = TimeSpan.FromSeconds(1),
            InitialBackoff = TimeSpan.FromMilliseconds(50),
            MaxBackoff = TimeSpan.FromMilliseconds(400),
            MaxOutage = TimeSpan.FromSeconds(30),
        },
    };

    private static async Task WaitForAsync(Func<bool> condition, string what, CancellationToken ct, int seconds = 30)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out waiting for {what}");
            await Task.Delay(20, ct);
        }
    }

    /// <summary>Runs a sender through the proxy; <paramref name="outage"/> breaks the link after 20 rounds and returns once it may heal.</summary>
    private static async Task<(MigrationResult Result, List<string> Notices)> MigrateThroughAsync(CuttableProxy proxy, ScriptedGuest guest,
        Func<Task> outage, CancellationToken ct)
    {
        using Socket socket = await MigrationSocket.ConnectAsync(proxy.Endpoint, ct);
        var sender = new PresyncSender(guest, socket, Key, Options(proxy.Endpoint));
        int rounds = 0;
        var notices = new List<string>();
        sender.RoundCompleted += _ => Interlocked.Increment(ref rounds);
        sender.Notice += n => { lock (notices) notices.Add(n); };
        var reconnected = new TaskCompletionSource<ReconnectRecord>(TaskCreationOptions.RunContinuationsAsynchronously);
        sender.Reconnected += r => reconnected.TrySetResult(r);
        Task<MigrationResult> run = sender.RunAsync(ct);
        await WaitForAsync(() => Volatile.Read(ref rounds) >= 20 || run.IsCompleted, "20 sync rounds", ct);
        Assert.False(run.IsCompleted, run.IsCompleted ? run.Result.Failure : null);
        await outage();
        await reconnected.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);
        int after = Volatile.Read(ref rounds);
        await WaitForAsync(() => Volatile.Read(ref rounds) >= after + 10, "10 rounds after the reconnection", ct);
        sender.Launch();
        MigrationResult result = await run.WaitAsync(TimeSpan.FromSeconds(60), ct);
        return (result, notices);
    }

    [Fact]
    public async Task A_cut_connection_mid_sync_is_resumed_and_only_what_the_receiver_lacks_is_resent()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        var log = new List<string>();
        await using var service = new Service(log);
        using var proxy = new CuttableProxy(service.Endpoint);
        using var guest = new ScriptedGuest(4096, seed: 21);
        long guestBytes = guest.Memory.PageCount * guest.Memory.PageSize;

        (MigrationResult r, List<string> notices) = await MigrateThroughAsync(proxy, guest, () => { proxy.Cut(); return Task.CompletedTask; }, ct);

        Assert.True(r.Succeeded, r.Failure + "\n" + Text(log));
        Assert.True(r.Verified);
        Assert.True(guest.Stopped);
        ReconnectRecord rec = Assert.Single(r.Reconnects);
        Assert.Equal(SessionStatus.Resumed, rec.Status);
        Assert.Equal(1u, rec.Generation);
        Assert.NotNull(rec.BytesResent);
        Assert.True(rec.BytesResent < guestBytes / 20, $"{rec.BytesResent} bytes resent for a {guestBytes}-byte guest");
        Assert.Empty(notices);
        Assert.NotNull(r.SessionId);
        Assert.Contains(r.Rounds, x => x.ReconnectOutageMs is not null);
        string text = Text(log);
        Assert.Contains("event=session.parked", text);
        Assert.Contains("event=session.resumed_connection", text);
        Assert.Contains($"resume_session={r.SessionId}", text);
        TestContext.Current.SendDiagnosticMessage($"cut: outage {rec.OutageMs:0} ms, {rec.PagesToResend} pages marked, {rec.BytesResent} bytes resent of {guestBytes}");
    }

    [Fact]
    public async Task A_silently_dead_link_is_detected_by_liveness_and_the_new_connection_takes_over_the_open_old_one()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        var log = new List<string>();
        await using var service = new Service(log);
        using var proxy = new CuttableProxy(service.Endpoint);
        using var guest = new ScriptedGuest(4096, seed: 22);
        long guestBytes = guest.Memory.PageCount * guest.Memory.PageSize;

        (MigrationResult r, _) = await MigrateThroughAsync(proxy, guest, async () =>
        {
            proxy.Blackhole();
            await Task.Delay(TimeSpan.FromSeconds(2), ct); // longer than the 1 s liveness timeout
            proxy.Restore();
        }, ct);

        Assert.True(r.Succeeded, r.Failure + "\n" + Text(log));
        Assert.True(r.Verified);
        ReconnectRecord rec = Assert.Single(r.Reconnects);
        Assert.Equal(SessionStatus.Resumed, rec.Status);
        Assert.Contains("liveness", rec.Cause);
        Assert.True(rec.BytesResent < guestBytes / 10, $"{rec.BytesResent} bytes resent for a {guestBytes}-byte guest");
        string text = Text(log);
        Assert.Contains("event=session.taking_over", text); // the receiver had not noticed: the old connection was still open
        Assert.Contains("event=session.parked", text);
        Assert.Contains("event=session.resumed_connection", text);
    }

    [Fact]
    public async Task After_a_receiver_restart_the_sender_starts_over_says_so_and_still_verifies()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        var log = new List<string>();
        var first = new Service(log);
        await using var second = new Service(log);
        using var proxy = new CuttableProxy(first.Endpoint);
        using var guest = new ScriptedGuest(4096, seed: 23);

        (MigrationResult r, List<string> notices) = await MigrateThroughAsync(proxy, guest, async () =>
        {
            proxy.Blackhole(); // no reconnection until the "new process" listens
            proxy.Cut();
            await first.DisposeAsync(); // the old receiver process is gone, with whatever it had parked
            proxy.Upstream = second.Endpoint;
            proxy.Restore();
        }, ct);

        Assert.True(r.Succeeded, r.Failure + "\n" + Text(log));
        Assert.True(r.Verified);
        ReconnectRecord rec = Assert.Single(r.Reconnects);
        Assert.Equal(SessionStatus.Unknown, rec.Status);
        Assert.Equal(guest.Memory.PageCount, rec.PagesToResend);
        Assert.Contains(notices, n => n.Contains($"the receiver had no state for session {r.SessionId}: starting over"));
        Assert.Contains("event=session.resume_unknown", Text(log));
    }

    private sealed record RawClient(Socket Socket, FrameReader Reader, FrameWriter Writer, HandshakeResult Session) : IDisposable
    {
        public void Dispose() => Socket.Dispose();
    }

    private static readonly MemoryLayout RawLayout = MemoryLayout.SingleSlot(GuestMemory.HostPageSize, 1 << 20);

    private static async Task<RawClient> OpenAsync(IPEndPoint endpoint, CancellationToken ct)
    {
        Socket socket = await MigrationSocket.ConnectAsync(endpoint, ct);
        var reader = new FrameReader(new NetworkStream(socket, ownsSocket: false));
        var writer = new FrameWriter(socket);
        HandshakeResult session = await Handshake.RunSenderAsync(reader, writer,
            new SenderHandshakeOptions(RawLayout, PageHashAlgorithm.PageHasher, HelloOptions.ZeroPages | HelloOptions.Resumable), Key, ct);
        Assert.True((session.Options & HelloOptions.Resumable) != 0);
        return new RawClient(socket, reader, writer, session);
    }

    private static async Task<SessionState> StartAsync(RawClient c, byte[] id, uint generation, CancellationToken ct, byte[]? proof = null)
    {
        await c.Writer.WriteAsync(new SessionStart(id, generation, proof ?? HandshakeTranscript.SessionProof(Key, c.Session.Nonces, id, generation)), ct);
        return await c.Reader.ReadExpectedAsync<SessionState>(ct);
    }

    [Fact]
    public async Task SessionStart_unknown_id_or_wrong_generation_is_Unknown_the_next_generation_resumes_with_every_hash_and_a_bad_proof_is_refused()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        var log = new List<string>();
        await using var service = new Service(log);
        byte[] id = System.Security.Cryptography.RandomNumberGenerator.GetBytes(16);
        long pages = (long)RawLayout.TotalBytes / GuestMemory.HostPageSize;

        using (RawClient c = await OpenAsync(service.Endpoint, ct))
        {
            Assert.Equal(SessionStatus.New, (await StartAsync(c, id, 0, ct)).Status);
            await c.Writer.WriteAsync(new Ping(1), ct); // anything after SessionState: the session is under way
            await c.Reader.ReadExpectedAsync<Pong>(ct);
        }
        await WaitForAsync(() => service.Receiver.ParkedSessions == 1, "the session to park", ct);

        using (RawClient c = await OpenAsync(service.Endpoint, ct))
            Assert.Equal(SessionStatus.Unknown, (await StartAsync(c, System.Security.Cryptography.RandomNumberGenerator.GetBytes(16), 1, ct)).Status);

        using (RawClient c = await OpenAsync(service.Endpoint, ct))
        {
            SessionState state = await StartAsync(c, id, 1, ct);
            Assert.Equal(SessionStatus.Resumed, state.Status);
            Assert.Equal((ulong)pages, state.HashCount);
            PageHashes hashes = await c.Reader.ReadExpectedAsync<PageHashes>(ct);
            Assert.Equal(0UL, hashes.FirstIndex);
            Assert.Equal(pages, hashes.Hashes.Length);
            Assert.All(hashes.Hashes.ToArray(), h => Assert.Equal(PageHasher.ZeroPageHash(GuestMemory.HostPageSize), h));
            await c.Writer.WriteAsync(new Ping(2), ct);
            await c.Reader.ReadExpectedAsync<Pong>(ct);
        }
        await WaitForAsync(() => service.Receiver.ParkedSessions == 1, "the session to park again (generation 1)", ct);

        using (RawClient c = await OpenAsync(service.Endpoint, ct))
            Assert.Equal(SessionStatus.Unknown, (await StartAsync(c, id, 1, ct)).Status); // generation 1 again: must be 2
        await WaitForAsync(() => service.Receiver.ParkedSessions == 0, "the unusable parked session to be released", ct);

        using (RawClient c = await OpenAsync(service.Endpoint, ct))
        {
            await c.Writer.WriteAsync(new SessionStart(id, 0, new byte[32]), ct);
            ProtocolException e = await Assert.ThrowsAnyAsync<ProtocolException>(async () => await c.Reader.ReadExpectedAsync<SessionState>(ct));
            Assert.Equal(AbortReason.AuthenticationFailed, e.AbortReason);
        }
        string text = Text(log);
        Assert.Contains("must be 2", text);
    }
}
