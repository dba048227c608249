using System.Net;
using System.Net.Sockets;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Memory;
using KvmPresync.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// The receiver as a service (<see cref="ReceiveService"/>), in process with blank targets: bad peers are refused and
/// logged and the service goes on; admission by session count and memory; stopping drains. Real guests in a real
/// <c>kvmpresync receive</c> process: <see cref="ReceiveServiceCliTests"/>.
/// </summary>
public sealed class ReceiveServiceTests
{
    private static readonly PreSharedKey Key = MigrationHarness.Key(7);

    private sealed class Service : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _run;
        private readonly List<string> _log = [];

        public Service(ReceiveServiceOptions options)
        {
            Listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
            Receiver = new ReceiveService(Key, layout => new BlankTarget(layout), options, new ServiceLog(line => { lock (_log) _log.Add(line); }));
            Receiver.SessionEnded += e =>
            {
                lock (Ended) Ended.Add(e);
                e.ResumedTarget?.Dispose();
            };
            _run = Receiver.RunAsync(Listener, _stop.Token);
        }

        public Socket Listener { get; }
        public ReceiveService Receiver { get; }
        public List<ReceiveSessionEnded> Ended { get; } = [];
        public IPEndPoint Endpoint => (IPEndPoint)Listener.LocalEndPoint!;
        public string Log { get { lock (_log) return string.Join('\n', _log); } }

        public async Task WaitEndedAsync(int count, CancellationToken ct)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (true)
            {
                lock (Ended) if (Ended.Count >= count) return;
                if (DateTime.UtcNow > deadline) Assert.Fail($"only {Ended.Count} of {count} sessions ended; log:\n{Log}");
                await Task.Delay(20, ct);
            }
        }

        public async Task StopAsync()
        {
            _stop.Cancel();
            await _run.WaitAsync(TimeSpan.FromSeconds(30));
        }

        public async ValueTask DisposeAsync()
        {
            if (!_stop.IsCancellationRequested) await StopAsync();
            Listener.Dispose();
        }
    }

    private static async Task<MigrationResult> MigrateAsync(IPEndPoint endpoint, ScriptedGuest guest, PreSharedKey key, CancellationToken ct)
    {
        using Socket socket = await MigrationSocket.ConnectAsync(endpoint, ct);
        var sender = new PresyncSender(guest, socket, key, new PresyncOptions
        {
            Engine = new SyncEngineOptions { Policy = SyncPolicy.Predict, LinkBitsPerSecond = 1e9, RoundInterval = TimeSpan.FromMilliseconds(50) },
            RateLimitBitsPerSecond = 0,
        });
        guest.Launch = sender.Launch;
        return await sender.RunAsync(ct);
    }

    private static async Task<Abort?> ReadAbortAsync(Socket socket, CancellationToken ct)
    {
        var reader = new FrameReader(new NetworkStream(socket, ownsSocket: false));
        try
        {
            FrameHeader h = await reader.ReadHeaderAsync(ct);
            return h.Type == FrameType.Abort ? await reader.ReadBodyAsync<Abort>(h, ct) : null;
        }
        catch (ProtocolException)
        {
            return null; // closed without an Abort
        }
    }

    [Fact]
    public async Task After_garbage_connect_and_close_a_wrong_key_a_stalled_peer_and_an_oversized_layout_two_concurrent_migrations_are_verified()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var service = new Service(new ReceiveServiceOptions
        {
            Receiver = new ReceiverOptions { MaxMemoryBytes = 64L << 20, HandshakeTimeout = TimeSpan.FromSeconds(1) },
            HostAvailableBytes = () => 1L << 30,
        });

        // garbage
        using (var garbage = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await garbage.ConnectAsync(service.Endpoint, ct);
            await garbage.SendAsync(Enumerable.Range(0, 200).Select(i => (byte)(i * 37)).ToArray(), ct);
            Abort? abort = await ReadAbortAsync(garbage, ct);
            Assert.NotNull(abort);
        }
        // connect and close
        using (var scanner = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            await scanner.ConnectAsync(service.Endpoint, ct);
        // a stalled peer: half a frame header, then nothing
        using (var slow = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await slow.ConnectAsync(service.Endpoint, ct);
            await slow.SendAsync(new byte[] { 1, 0, 0 }, ct);
            Abort? abort = await ReadAbortAsync(slow, ct).WaitAsync(TimeSpan.FromSeconds(10), ct);
            Assert.Equal(AbortReason.Timeout, abort?.Reason);
        }
        // a wrong key
        using (var wrong = new ScriptedGuest(64))
        {
            using Socket socket = await MigrationSocket.ConnectAsync(service.Endpoint, ct);
            var sender = new PresyncSender(wrong, socket, MigrationHarness.Key(9));
            await Assert.ThrowsAsync<AuthenticationFailedException>(() => sender.RunAsync(ct));
            Assert.False(wrong.Paused);
        }
        // an oversized layout (128 MiB against a 64 MiB cap): refused at Hello, before authentication
        using (var big = new ScriptedGuest(32768))
        {
            MigrationResult r = await MigrateAsync(service.Endpoint, big, Key, ct);
            Assert.False(r.Succeeded);
            Assert.Contains("exceeds this receiver's limit", r.Failure);
            Assert.False(big.Paused);
        }
        await service.WaitEndedAsync(5, ct);

        // then two real migrations at the same time
        using var a = new ScriptedGuest(2048, seed: 11) { LaunchAfterHarvests = 20 };
        using var b = new ScriptedGuest(4096, seed: 12) { LaunchAfterHarvests = 30 };
        MigrationResult[] results = await Task.WhenAll(MigrateAsync(service.Endpoint, a, Key, ct), MigrateAsync(service.Endpoint, b, Key, ct));
        Assert.All(results, r => Assert.True(r.Succeeded && r.Verified, r.Failure));
        Assert.True(a.Stopped && b.Stopped);
        await service.WaitEndedAsync(7, ct);

        ReceiveServiceStats stats = service.Receiver.Stats;
        Assert.Equal(2, stats.Resumed);
        Assert.Equal(5, stats.Failed);
        string log = service.Log;
        Assert.Equal(2, log.Split('\n').Count(l => l.Contains("event=session.resumed")));
        Assert.Equal(5, log.Split('\n').Count(l => l.Contains("event=session.failed")));
        Assert.Contains("abort=Timeout", log);
        Assert.Contains("authentication failed", log); // the sender finds the receiver's proof wrong first and aborts
        Assert.Contains("abort=LayoutRejected", log);
        Assert.DoesNotContain(Convert.ToHexString(Enumerable.Repeat((byte)7, 8).ToArray()), log, StringComparison.OrdinalIgnoreCase);
        Assert.All(log.Split('\n').Where(l => l.Contains("event=session.")), l => Assert.Matches(@"session=s\d+", l));
    }

    [Fact]
    public async Task A_connection_beyond_the_session_cap_is_refused_as_busy_and_the_session_in_progress_completes()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var service = new Service(new ReceiveServiceOptions { MaxConcurrentSessions = 1, HostAvailableBytes = () => 1L << 30 });
        using var first = new ScriptedGuest(1024) { LaunchAfterHarvests = 40 };
        Task<MigrationResult> running = MigrateAsync(service.Endpoint, first, Key, ct);
        while (first.Harvests < 3) await Task.Delay(10, ct);

        using (var second = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await second.ConnectAsync(service.Endpoint, ct);
            Abort? abort = await ReadAbortAsync(second, ct);
            Assert.Equal(AbortReason.Busy, abort?.Reason);
            Assert.Contains("maximum of 1 sessions", abort!.Message);
        }
        MigrationResult r = await running;
        Assert.True(r.Succeeded, r.Failure);
        Assert.Equal(1, service.Receiver.Stats.RefusedBusy);
    }

    [Fact]
    public async Task Memory_beyond_what_the_host_has_free_is_refused_after_authentication_with_a_message_saying_so()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var service = new Service(new ReceiveServiceOptions { HostAvailableBytes = () => 2L << 20 }); // 2 MiB free
        using var guest = new ScriptedGuest(1024); // 4 MiB
        MigrationResult r = await MigrateAsync(service.Endpoint, guest, Key, ct);
        Assert.False(r.Succeeded);
        Assert.Contains("InsufficientMemory", r.Failure);
        Assert.Contains("exceeds what this host has free", r.Failure);
        Assert.False(guest.Paused);
        await service.WaitEndedAsync(1, ct);
        Assert.Equal(AbortReason.InsufficientMemory, service.Ended[0].Result.AbortSent);
    }

    [Fact]
    public async Task Stopping_the_service_aborts_a_migration_in_progress_and_the_source_keeps_running()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        var service = new Service(new ReceiveServiceOptions { HostAvailableBytes = () => 1L << 30 });
        await using (service)
        {
            using var guest = new ScriptedGuest(1024); // never launched
            Task<MigrationResult> running = MigrateAsync(service.Endpoint, guest, Key, ct);
            while (guest.Harvests < 3) await Task.Delay(10, ct);
            await service.StopAsync();
            MigrationResult r = await running.WaitAsync(TimeSpan.FromSeconds(30), ct);
            Assert.False(r.Succeeded);
            Assert.Contains("Cancelled", r.Failure);
            Assert.Equal(SenderPhase.Sync, r.FailedPhase);
            Assert.False(guest.Paused);
            Assert.False(guest.Stopped);
            Assert.True(service.Ended.Single().Result.Cancelled);
        }
    }
}
