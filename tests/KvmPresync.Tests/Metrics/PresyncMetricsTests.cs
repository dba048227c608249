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
/// The sender's /metrics during a real presync: a KVM workload guest syncing to a receiver on loopback, scraped over
/// HTTP at two moments — the counters move, the gauges are there — and after the switchover its outcome.
/// </summary>
[Collection(nameof(KvmPresync.Tests.ZeroCopy.ProcessAllocationCollection))]
public sealed class PresyncMetricsTests
{
    [Fact]
    public async Task Scraped_twice_during_a_real_presync_sent_bytes_and_rounds_grow_the_dirty_rate_and_readiness_are_there_and_the_outcome_follows()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var key = MigrationHarness.Key();
        var (receiverAt, received) = MigrationHarness.StartReceiver(kvm, key, ct: ct);
        using var source = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Movie));

        CollectorRegistry registry = Prometheus.Metrics.NewCustomRegistry();
        await using var endpoint = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), registry);
        using Socket socket = await MigrationSocket.ConnectAsync(receiverAt, ct);
        var migrationSource = new MachineMigrationSource(source);
        var sender = new PresyncSender(migrationSource, socket, key, new PresyncOptions
        {
            Engine = new SyncEngineOptions { Policy = SyncPolicy.PredictSlowStart, LinkBitsPerSecond = 1e9 },
        });
        var metrics = new SenderMetrics(registry, migrationSource.Memory.PageSize, guestReportsProgress: true);
        metrics.Bind(sender);
        int syncRounds = 0;
        sender.RoundCompleted += r => { if (r.Phase == RoundPhase.Sync) Interlocked.Increment(ref syncRounds); };

        Task<MigrationResult> run = sender.RunAsync(ct);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (Volatile.Read(ref syncRounds) < 3 && !run.IsCompleted && DateTime.UtcNow < deadline) await Task.Delay(50, ct);
        Assert.False(run.IsCompleted, run.IsCompleted ? (await run).Failure : "");
        Assert.True(syncRounds >= 3, "three sync rounds within 30 s");

        PrometheusText first = await PrometheusText.ScrapeAsync(endpoint.Url, ct);
        int roundsAtFirst = Volatile.Read(ref syncRounds);
        while (Volatile.Read(ref syncRounds) < roundsAtFirst + 3 && DateTime.UtcNow < deadline + TimeSpan.FromSeconds(30)) await Task.Delay(50, ct);
        PrometheusText second = await PrometheusText.ScrapeAsync(endpoint.Url, ct);
        TestContext.Current.SendDiagnosticMessage("second scrape during presync:\n" + second.Text);

        Assert.True(second["kvmpresync_sender_sent_bytes_total{phase=\"sync\"}"] > first["kvmpresync_sender_sent_bytes_total{phase=\"sync\"}"]);
        Assert.True(second["kvmpresync_sender_rounds_total{phase=\"sync\"}"] > first["kvmpresync_sender_rounds_total{phase=\"sync\"}"]);
        Assert.True(second["kvmpresync_sender_round"] > first["kvmpresync_sender_round"]);
        Assert.True(second["kvmpresync_sender_dirtied_pages_total"] > first["kvmpresync_sender_dirtied_pages_total"]);
        foreach (PrometheusText scrape in new[] { first, second })
        {
            Assert.True(scrape["kvmpresync_sender_dirty_pages_per_second"] > 0); // the movie guest writes frames all the time
            Assert.True(scrape["kvmpresync_readiness_launch_to_resume_seconds"] >= scrape["kvmpresync_readiness_downtime_seconds"]);
            Assert.True(scrape["kvmpresync_readiness_downtime_seconds"] > 0);
            Assert.True(scrape["kvmpresync_readiness_bytes"] >= 0);
            Assert.Equal(0, scrape["kvmpresync_readiness_gives_up"]);
            Assert.True(scrape["kvmpresync_sender_window_bytes"] > 0);
            Assert.True(scrape["kvmpresync_sender_round_interval_seconds"] is > 0 and < 10);
            Assert.True(scrape["kvmpresync_sender_pending_bytes"] >= 0);
            Assert.True(scrape["kvmpresync_sender_held_bytes"] >= 0);
            Assert.True(scrape["kvmpresync_sender_deferred_bytes"] >= 0);
            Assert.True(scrape["kvmpresync_guest_progress_units_per_second"] >= 0);
            Assert.False(scrape.Has("kvmpresync_migration_succeeded")); // not before the end
        }
        Assert.True(second["kvmpresync_sender_rtt_seconds"] is > 0 and < 5, "an ack's RTT on loopback");
        Assert.True(second["kvmpresync_sender_acked_bytes_total"] > 0);
        Assert.All(second.Families, name => Assert.False(string.IsNullOrWhiteSpace(second.Help[name]), $"{name} has no HELP"));

        sender.Launch();
        MigrationResult result = await run.WaitAsync(TimeSpan.FromSeconds(60), ct);
        var (rx, target) = await received.WaitAsync(TimeSpan.FromSeconds(30), ct);
        using (target)
        {
            Assert.True(result.Succeeded, $"sender: {result.Failure}; receiver: {rx.Failure}");
            metrics.Complete(result);
            PrometheusText after = await PrometheusText.ScrapeAsync(endpoint.Url, ct);
            Assert.Equal(1, after["kvmpresync_migration_succeeded"]);
            Assert.Equal(result.DowntimeMs / 1000, after["kvmpresync_migration_downtime_seconds"], 9);
            Assert.Equal(result.LaunchToResumeMs / 1000, after["kvmpresync_migration_launch_to_resume_seconds"], 9);
            Assert.Equal(result.SyncBytes, after["kvmpresync_migration_sync_bytes"]);
            Assert.True(after["kvmpresync_sender_rounds_total{phase=\"paused\"}"] >= 1);
            // every byte the rounds report sent is in the counters
            Assert.Equal(result.Rounds.Sum(r => (double)r.SentBytes), after.Sum("kvmpresync_sender_sent_bytes_total"));
        }
    }
}
