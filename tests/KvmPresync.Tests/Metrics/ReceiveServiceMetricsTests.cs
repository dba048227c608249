using System.Net;
using System.Net.Sockets;
using KvmPresync.Engine;
using KvmPresync.Metrics;
using KvmPresync.Migration;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.Migration;
using KvmPresync.Tests.Vmm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Migration;
using KvmPresync.Wire;
using Prometheus;

namespace KvmPresync.Tests.Metrics;

/// <summary>
/// The receive service's /metrics while it serves: a real KVM guest presyncing into it shows as one active session
/// with its own series; a sender with the wrong key, a silent peer and a connection beyond the session cap show as refusals with
/// their reasons; when the guest has resumed, its series is gone and the outcome is counted.
/// </summary>
[Collection(nameof(KvmPresync.Tests.ZeroCopy.ProcessAllocationCollection))]
public sealed class ReceiveServiceMetricsTests
{
    [Fact]
    public async Task An_active_session_has_its_series_a_wrong_key_and_a_busy_refusal_are_counted_by_reason_and_the_series_goes_when_the_session_ends()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var key = MigrationHarness.Key();
        var lines = new List<string>();
        var service = new ReceiveService(key, layout => new MachineMigrationTarget(kvm, MigrationHarness.SlotsOf(layout)),
            new ReceiveServiceOptions { MaxConcurrentSessions = 2, HostAvailableBytes = () => 4L << 30 }, new ServiceLog(l => { lock (lines) lines.Add(l); }));
        var ended = new TaskCompletionSource<ReceiveSessionEnded>(TaskCreationOptions.RunContinuationsAsynchronously);
        service.SessionEnded += e =>
        {
            if (e.Result.Resumed) { e.ResumedTarget?.Dispose(); ended.TrySetResult(e); } // the guest is not needed here; its metrics are
        };
        CollectorRegistry registry = Prometheus.Metrics.NewCustomRegistry();
        new ReceiverMetrics(registry).Bind(service);
        await using var endpoint = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), registry);
        using Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        var serviceAt = (IPEndPoint)listener.LocalEndPoint!;
        using var stop = new CancellationTokenSource();
        Task serving = service.RunAsync(listener, stop.Token);
        try
        {
            PrometheusText idle = await PrometheusText.ScrapeAsync(endpoint.Url, ct);
            Assert.Equal(0, idle["kvmpresync_receive_sessions_active"]);
            Assert.False(idle.Has("kvmpresync_receive_session_memory_bytes"));

            // a real guest presyncing into the service
            using var source = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Text, 64L << 20));
            using Socket socket = await MigrationSocket.ConnectAsync(serviceAt, ct);
            var sender = new PresyncSender(new MachineMigrationSource(source), socket, key, new PresyncOptions
            {
                Engine = new SyncEngineOptions { Policy = SyncPolicy.PredictSlowStart, LinkBitsPerSecond = 1e9 },
            });
            int rounds = 0;
            sender.RoundCompleted += _ => Interlocked.Increment(ref rounds);
            Task<MigrationResult> run = sender.RunAsync(ct);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (Volatile.Read(ref rounds) < 3 && !run.IsCompleted && DateTime.UtcNow < deadline) await Task.Delay(50, ct);
            Assert.False(run.IsCompleted, run.IsCompleted ? (await run).Failure : "");

            // a sender with the wrong key
            using (var wrong = new ScriptedGuest(64))
            using (Socket wrongSocket = await MigrationSocket.ConnectAsync(serviceAt, ct))
                await Assert.ThrowsAsync<AuthenticationFailedException>(() => new PresyncSender(wrong, wrongSocket, MigrationHarness.Key(9)).RunAsync(ct));
            await WaitForAsync(endpoint.Url, s => s.Sum("kvmpresync_receive_sessions_refused_total") >= 1, ct); // its session has ended
            // a peer that connects and says nothing holds the second session slot, so one more connection is refused as busy
            using (var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                await silent.ConnectAsync(serviceAt, ct);
                await Task.Delay(200, ct);
                using var extra = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await extra.ConnectAsync(serviceAt, ct);
                byte[] drain = new byte[256];
                while (await extra.ReceiveAsync(drain, ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), ct) > 0) { } // Abort(Busy), then closed
            } // the silent peer leaves: refused too (it never sent a Hello)

            PrometheusText during = await WaitForAsync(endpoint.Url, s => s.Sum("kvmpresync_receive_sessions_refused_total") >= 3, ct);
            TestContext.Current.SendDiagnosticMessage("receive service during a presync:\n" + during.Text);
            Assert.Equal(1, during["kvmpresync_receive_sessions_active"]);
            Assert.Equal(1, during["kvmpresync_receive_sessions_admitted_total"]);
            KeyValuePair<string, double> session = Assert.Single(during.Samples, s => s.Key.StartsWith("kvmpresync_receive_session_memory_bytes{", StringComparison.Ordinal));
            Assert.Equal(64L << 20, session.Value);
            Assert.Matches("session=\"s\\d+\"", session.Key);
            Assert.Contains($"peer=\"{socket.LocalEndPoint}\"", session.Key);
            Assert.Equal(1, during["kvmpresync_receive_sessions_refused_total{reason=\"authentication_failed\"}"]);
            Assert.Equal(1, during["kvmpresync_receive_sessions_refused_total{reason=\"busy\"}"]);
            Assert.Equal(1, during["kvmpresync_receive_sessions_refused_total{reason=\"closed\"}"]); // the silent peer: left without a byte
            Assert.Equal(3, during.Sum("kvmpresync_receive_sessions_refused_total"));
            Assert.False(during.Has("kvmpresync_receive_sessions_ended_total{outcome=\"failed\"}") && during["kvmpresync_receive_sessions_ended_total{outcome=\"failed\"}"] > 0,
                "a refusal is not a failed session");

            sender.Launch();
            MigrationResult result = await run.WaitAsync(TimeSpan.FromSeconds(60), ct);
            Assert.True(result.Succeeded, result.Failure);
            await ended.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);

            PrometheusText after = await PrometheusText.ScrapeAsync(endpoint.Url, ct);
            Assert.Equal(0, after["kvmpresync_receive_sessions_active"]);
            Assert.False(after.Has("kvmpresync_receive_session_memory_bytes"), "the ended session's series is removed");
            Assert.Equal(1, after["kvmpresync_receive_sessions_ended_total{outcome=\"resumed\"}"]);
            Assert.True(after["kvmpresync_receive_last_resume_seconds"] > 0);
            Assert.True(after["kvmpresync_receive_received_bytes_total"] >= result.SyncBytes);
            Assert.Equal(0, after["kvmpresync_receive_sessions_parked"]);
        }
        finally
        {
            stop.Cancel();
            await serving.WaitAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
        }
    }

    private static async Task<PrometheusText> WaitForAsync(Uri url, Func<PrometheusText, bool> condition, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            PrometheusText scrape = await PrometheusText.ScrapeAsync(url, ct);
            if (condition(scrape) || DateTime.UtcNow > deadline) return scrape;
            await Task.Delay(50, ct);
        }
    }
}
