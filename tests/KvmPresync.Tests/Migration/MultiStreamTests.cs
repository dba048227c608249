using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.Vmm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Devices;
using KvmPresync.Vmm.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// Protocol 1.3 MultiStream over real sockets: a migration over several TCP connections verifies (a scripted guest and a
/// real KVM guest, each into a <see cref="ReceiveService"/>); joins that do not belong are refused with an Abort while the
/// session goes on; a dropped data stream fails the migration and the source keeps running.
/// </summary>
public sealed class MultiStreamTests
{
    private static readonly PreSharedKey Key = MigrationHarness.Key(7);

    private sealed class Service : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _run;
        private readonly List<string> _log = [];

        public Service(Func<MemoryLayout, IMigrationTarget> createTarget, TlsOptions? tls = null)
        {
            Listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
            Receiver = new ReceiveService(Key, createTarget, new ReceiveServiceOptions { Receiver = new ReceiverOptions { MaxMemoryBytes = 1L << 30, Tls = tls } },
                new ServiceLog(line => { lock (_log) _log.Add(line); }));
            Receiver.SessionEnded += e =>
            {
                lock (Ended) Ended.Add(e);
                if (e.ResumedTarget is { } t && Keep is null) t.Dispose();
                else if (e.ResumedTarget is { } kept) Keep!.TrySetResult(kept);
            };
            _run = Receiver.RunAsync(Listener, _stop.Token);
        }

        public Socket Listener { get; }
        public ReceiveService Receiver { get; }
        public List<ReceiveSessionEnded> Ended { get; } = [];
        public TaskCompletionSource<IMigrationTarget>? Keep { get; init; }
        public IPEndPoint Endpoint => (IPEndPoint)Listener.LocalEndPoint!;
        public string Log { get { lock (_log) return string.Join('\n', _log); } }

        public async ValueTask DisposeAsync()
        {
            _stop.Cancel();
            await _run.WaitAsync(TimeSpan.FromSeconds(30));
            Listener.Dispose();
        }
    }

    private static PresyncOptions Options(int streams) => new()
    {
        Engine = new SyncEngineOptions { Policy = SyncPolicy.Predict, LinkBitsPerSecond = 1e9, RoundInterval = TimeSpan.FromMilliseconds(50) },
        RateLimitBitsPerSecond = 0,
        Streams = streams,
    };

    [Theory]
    [InlineData(0)]
    [InlineData(17)]
    public void Streams_outside_1_to_16_are_refused_naming_the_option(int streams)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new PresyncOptions { Streams = streams }.Validate());
        Assert.Equal(nameof(PresyncOptions.Streams), e.ParamName);
        Assert.Contains("between 1 and 16", e.Message);
    }

    [Fact]
    public async Task A_migration_over_four_streams_is_verified_with_every_data_stream_joined_and_closed_after_it()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var service = new Service(layout => new BlankTarget(layout));
        using var guest = new ScriptedGuest(8192, writesPerHarvest: 64, seed: 5) { LaunchAfterHarvests = 40 };
        using Socket socket = await MigrationSocket.ConnectAsync(service.Endpoint, ct);
        var sender = new PresyncSender(guest, socket, Key, Options(4));
        guest.Launch = sender.Launch;
        MigrationResult result = await sender.RunAsync(ct);

        Assert.True(result.Succeeded && result.Verified, result.Failure);
        Assert.Equal(4, result.Streams);
        Assert.True(guest.Stopped);
        Assert.NotNull(result.InitialCopyBytes);
        Assert.NotNull(result.InitialCopyMs);
        // The sender has its Resumed frame before the service has logged and counted the session's end: wait for both.
        await WaitForAsync(() => service.Log.Split('\n').Count(l => l.Contains("event=stream.ended")) == 3
                                 && service.Log.Contains("event=session.resumed") && service.Receiver.Stats.Resumed == 1, service, ct);
        Assert.Equal(0, service.Receiver.Stats.Failed);
    }

    [Fact]
    public async Task Over_mutual_TLS_every_data_stream_is_a_TLS_connection_of_its_own_and_the_migration_verifies()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        var pki = new KvmPresync.Tests.Tls.TestCertificates();
        await using var service = new Service(layout => new BlankTarget(layout), pki.Side("receiver"));
        using var guest = new ScriptedGuest(4096, writesPerHarvest: 32, seed: 6) { LaunchAfterHarvests = 30 };
        using Socket socket = await MigrationSocket.ConnectAsync(service.Endpoint, ct);
        var sender = new PresyncSender(guest, socket, Key, Options(3) with { Tls = pki.Side("sender") });
        guest.Launch = sender.Launch;
        MigrationResult result = await sender.RunAsync(ct);
        Assert.True(result.Succeeded && result.Verified, $"{result.Failure}\n{service.Log}");
        Assert.Equal(3, result.Streams);
        await WaitForAsync(() => service.Log.Split('\n').Count(l => l.Contains("event=stream.ended")) == 2, service, ct);
    }

    [Fact]
    public async Task A_real_guest_migrated_over_three_streams_resumes_with_continuous_heartbeat()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        var kept = new TaskCompletionSource<IMigrationTarget>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var service = new Service(layout => new MachineMigrationTarget(kvm, MigrationHarness.SlotsOf(layout))) { Keep = kept };
        using var source = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Text));

        using Socket socket = await MigrationSocket.ConnectAsync(service.Endpoint, ct);
        var sender = new PresyncSender(new MachineMigrationSource(source), socket, Key, Options(3) with
        {
            Engine = new SyncEngineOptions { Policy = SyncPolicy.PredictSlowStart, LinkBitsPerSecond = 1e9 },
        });
        Task<MigrationResult> run = sender.RunAsync(ct);
        await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(4), ct));
        Assert.False(run.IsCompleted, run.IsCompleted ? (await run).Failure : "");
        sender.Launch();
        MigrationResult result = await run.WaitAsync(TimeSpan.FromSeconds(30), ct);
        Assert.True(result.Succeeded && result.Verified, $"{result.Failure}\n{service.Log}");
        Assert.Equal(3, result.Streams);

        using var target = (MachineMigrationTarget)await kept.Task.WaitAsync(TimeSpan.FromSeconds(10), ct);
        Machine dest = target.Machine!;
        Heartbeat last = source.Telemetry.LastHeartbeat!.Value;
        long beats = dest.Telemetry.HeartbeatCount;
        MachineTests.WaitFor(dest, () => dest.Telemetry.HeartbeatCount >= beats + 5, "5 heartbeats on the destination");
        Assert.Equal(0, dest.Telemetry.ContinuityErrors);
        Assert.Equal(0, dest.Telemetry.SelfCheckErrors);
        Assert.True(dest.Telemetry.LastHeartbeat!.Value.Seq > last.Seq);
        Assert.Equal(MachineExitKind.Stopped, (await source.Completion).Kind);
    }

    [Fact]
    public async Task Joins_that_do_not_belong_are_refused_with_an_abort_while_the_session_goes_on()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var service = new Service(layout => new BlankTarget(layout));

        // The main connection, driven by hand: handshake, then StreamSetup for 3 streams.
        using Socket main = await MigrationSocket.ConnectAsync(service.Endpoint, ct);
        var stream = new NetworkStream(main);
        var reader = new FrameReader(stream);
        var writer = new FrameWriter(stream);
        MemoryLayout layout = MemoryLayout.Create(4096, [new LayoutSlot(0, 0, 1024 * 4096)]);
        HandshakeResult session = await Handshake.RunSenderAsync(reader, writer,
            new SenderHandshakeOptions(layout, PageHashAlgorithm.PageHasher, HelloOptions.ZeroPages | HelloOptions.MultiStream), Key, ct);
        Assert.True((session.Options & HelloOptions.MultiStream) != 0);
        await writer.WriteAsync(new StreamSetup(3, 256), ct);
        Assert.Equal(new StreamSetup(3, 256), await reader.ReadExpectedAsync<StreamSetup>(ct));
        byte[] id = HandshakeTranscript.StreamJoinId(Key, session.Nonces);
        byte[] Proof(PreSharedKey k, uint index, uint streams) => HandshakeTranscript.StreamJoinProof(k, session.Nonces, id, index, streams);

        // a join id nobody set up (a forger without the key cannot derive the real one)
        Assert.Contains("names no session", await RefusedJoinAsync(service.Endpoint, new StreamJoin(RandomNumberGenerator.GetBytes(16), 1, 3, Proof(Key, 1, 3)), AbortReason.ProtocolViolation, ct));
        // the right id, a proof made with another key
        using (var other = MigrationHarness.Key(9))
            Assert.Contains("did not verify", await RefusedJoinAsync(service.Endpoint, new StreamJoin(id, 1, 3, Proof(other, 1, 3)), AbortReason.AuthenticationFailed, ct));
        // a valid proof replayed with another index (the proof binds the index)
        Assert.Contains("did not verify", await RefusedJoinAsync(service.Endpoint, new StreamJoin(id, 2, 3, Proof(Key, 1, 3)), AbortReason.AuthenticationFailed, ct));
        // more streams than negotiated
        Assert.Contains("set up 3 streams", await RefusedJoinAsync(service.Endpoint, new StreamJoin(id, 3, 4, Proof(Key, 3, 4)), AbortReason.ProtocolViolation, ct));
        // an index beyond the count: refused at decode
        Assert.Contains("not a data stream", await RefusedJoinAsync(service.Endpoint, new StreamJoin(id, 3, 3, Proof(Key, 3, 3)), AbortReason.ProtocolViolation, ct));

        // a genuine join, then a duplicate of its index
        using Socket data1 = await MigrationSocket.ConnectAsync(service.Endpoint, ct);
        var d1 = new FrameWriter(new NetworkStream(data1));
        var d1r = new FrameReader(new NetworkStream(data1));
        await d1.WriteAsync(new StreamJoin(id, 1, 3, Proof(Key, 1, 3)), ct);
        await d1r.ReadExpectedAsync<AuthOk>(ct);
        Assert.Contains("already joined", await RefusedJoinAsync(service.Endpoint, new StreamJoin(id, 1, 3, Proof(Key, 1, 3)), AbortReason.ProtocolViolation, ct));

        // the session went on through all of it: the main connection still answers
        await writer.WriteAsync(new Ping(42), ct);
        Assert.Equal(42UL, (await reader.ReadExpectedAsync<Pong>(ct)).TimestampEchoNs);
        Assert.DoesNotContain("event=session.failed session=s1 ", service.Log);

        // and the service still serves a whole migration over several streams
        using var guest = new ScriptedGuest(2048, seed: 3) { LaunchAfterHarvests = 20 };
        using Socket socket = await MigrationSocket.ConnectAsync(service.Endpoint, ct);
        var sender = new PresyncSender(guest, socket, Key, Options(2));
        guest.Launch = sender.Launch;
        MigrationResult result = await sender.RunAsync(ct);
        Assert.True(result.Succeeded && result.Verified, result.Failure);
        Assert.Equal(2, result.Streams);
    }

    /// <summary>Sends <paramref name="join"/> on a new connection; asserts it is answered with an Abort of <paramref name="reason"/> and closed; returns its message.</summary>
    private static async Task<string> RefusedJoinAsync(IPEndPoint endpoint, StreamJoin join, AbortReason reason, CancellationToken ct)
    {
        using Socket socket = await MigrationSocket.ConnectAsync(endpoint, ct);
        var stream = new NetworkStream(socket);
        await new FrameWriter(stream).WriteAsync(join, ct);
        var reader = new FrameReader(stream);
        ProtocolException refused = await Assert.ThrowsAnyAsync<ProtocolException>(async () => await reader.ReadExpectedAsync<AuthOk>(ct));
        Assert.True(refused.FromPeerAbort, refused.Message);
        Assert.Equal(reason, refused.AbortReason);
        ProtocolException closed = await Assert.ThrowsAnyAsync<ProtocolException>(async () => await reader.ReadHeaderAsync(ct));
        Assert.Equal(ProtocolError.PeerClosed, closed.Error);
        return refused.Message;
    }

    [Fact]
    public async Task A_dropped_data_stream_fails_the_migration_and_the_source_keeps_running()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var service = new Service(layout => new BlankTarget(layout));
        using var proxy = new CuttableProxy(service.Endpoint);
        using var guest = new ScriptedGuest(8192, writesPerHarvest: 64, seed: 8);
        using Socket socket = await MigrationSocket.ConnectAsync(proxy.Endpoint, ct); // the data streams follow it through the proxy
        var sender = new PresyncSender(guest, socket, Key, Options(3));
        Task<MigrationResult> run = sender.RunAsync(ct);
        await WaitForAsync(() => proxy.Connections == 3 && guest.Harvests > 10, service, ct);
        proxy.CutConnection(2); // a data stream (the main connection is the first)
        MigrationResult result = await run.WaitAsync(TimeSpan.FromSeconds(30), ct);

        Assert.False(result.Succeeded);
        Assert.False(guest.Paused);
        Assert.False(guest.Stopped); // the source guest keeps running
        Assert.Equal(SenderPhase.Sync, result.FailedPhase);
        await WaitForAsync(() => service.Receiver.Stats.Failed >= 1, service, ct);
        Assert.Contains("data stream", service.Log); // the receiver says which stream failed the session
        Assert.Equal(0, service.Receiver.Stats.Resumed);
    }

    [Fact]
    public async Task With_reconnection_a_dropped_data_stream_parks_the_session_and_the_migration_continues_verified_on_one_stream()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var service = new Service(layout => new BlankTarget(layout));
        using var proxy = new CuttableProxy(service.Endpoint);
        using var guest = new ScriptedGuest(8192, writesPerHarvest: 64, seed: 9);
        using Socket socket = await MigrationSocket.ConnectAsync(proxy.Endpoint, ct);
        var sender = new PresyncSender(guest, socket, Key, Options(3) with
        {
            Reconnect = new ReconnectOptions(c => MigrationSocket.ConnectAsync(proxy.Endpoint, c))
            {
                LivenessTimeout = TimeSpan.FromSeconds(1),
                InitialBackoff = TimeSpan.FromMilliseconds(50),
                MaxBackoff = TimeSpan.FromMilliseconds(400),
                MaxOutage = TimeSpan.FromSeconds(30),
            },
        });
        var notices = new List<string>();
        sender.Notice += n => { lock (notices) notices.Add(n); };
        Task<MigrationResult> run = sender.RunAsync(ct);
        await WaitForAsync(() => proxy.Connections == 3 && guest.Harvests > 10, service, ct);
        proxy.CutConnection(1); // a data stream
        await WaitForAsync(() => proxy.Connections == 4 && sender.LaunchRequested == false && guest.Harvests > 40, service, ct);
        sender.Launch();
        MigrationResult result = await run.WaitAsync(TimeSpan.FromSeconds(30), ct);

        Assert.True(result.Succeeded && result.Verified, $"{result.Failure}\n{service.Log}");
        ReconnectRecord reconnect = Assert.Single(result.Reconnects);
        Assert.Equal(SessionStatus.Resumed, reconnect.Status); // the receiver parked the session when its data stream failed
        Assert.Equal(1, result.Streams); // continued on the main connection alone
        lock (notices) Assert.Contains(notices, n => n.Contains("continues on one stream"));
    }

    private static async Task WaitForAsync(Func<bool> condition, Service service, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out; service log:\n{service.Log}");
            await Task.Delay(20, ct);
        }
    }
}
