using System.Net;
using KvmPresync.Engine;
using KvmPresync.Libvirt.Presync;
using KvmPresync.Metrics;
using KvmPresync.Migration;
using KvmPresync.Tests.Libvirt;
using Prometheus;

namespace KvmPresync.Tests.Metrics;

/// <summary>
/// The sender's /metrics during a real libvirt presync (a Linux guest under QEMU TCG between two private libvirt
/// instances): the rounds and bytes are there and move; guest progress is absent (a libvirt domain reports no work
/// units), as the HELP text and docs/METRICS.md say.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LibvirtPresyncMetricsTests
{
    [Fact]
    public async Task A_libvirt_presync_exports_its_rounds_and_bytes_and_no_guest_progress()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using LibvirtPresyncHarness h = await LibvirtPresyncHarness.StartOrSkipAsync("text", ct);
        using LibvirtMigrationSource source = h.OpenSource();
        Task<ReceiveSessionEnded> received = h.ReceiveOnceAsync(ct);
        CollectorRegistry registry = Prometheus.Metrics.NewCustomRegistry();
        await using var endpoint = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), registry);
        var metrics = new SenderMetrics(registry, source.Memory.PageSize, guestReportsProgress: false);
        int syncRounds = 0;
        PrometheusText? first = null, second = null;
        MigrationResult result = await h.PresyncAsync(source, TimeSpan.Zero, ct, prepare: sender =>
        {
            metrics.Bind(sender);
            sender.RoundCompleted += r => { if (r.Phase == RoundPhase.Sync) Interlocked.Increment(ref syncRounds); };
        }, duringSync: async () =>
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(40);
            while (Volatile.Read(ref syncRounds) < 3 && DateTime.UtcNow < deadline) await Task.Delay(50, ct);
            first = await PrometheusText.ScrapeAsync(endpoint.Url, ct);
            int at = Volatile.Read(ref syncRounds);
            while (Volatile.Read(ref syncRounds) < at + 3 && DateTime.UtcNow < deadline) await Task.Delay(50, ct);
            second = await PrometheusText.ScrapeAsync(endpoint.Url, ct);
        }); // launched as soon as the scrapes are taken
        Assert.True(result.Succeeded, result.Failure + "\n" + h.Log);
        Assert.True((await received).Result.Resumed);
        metrics.Complete(result);

        Assert.NotNull(first);
        Assert.NotNull(second);
        TestContext.Current.SendDiagnosticMessage("libvirt presync, second scrape:\n" + second!.Text);
        Assert.True(second["kvmpresync_sender_sent_bytes_total{phase=\"sync\"}"] > 0);
        Assert.True(second["kvmpresync_sender_rounds_total{phase=\"sync\"}"] > first!["kvmpresync_sender_rounds_total{phase=\"sync\"}"]);
        Assert.True(second["kvmpresync_sender_dirtied_pages_total"] >= first["kvmpresync_sender_dirtied_pages_total"]);
        Assert.True(second.Has("kvmpresync_readiness_launch_to_resume_seconds"));
        Assert.False(first.Has("kvmpresync_guest_progress_units_per_second"));
        Assert.False(second.Has("kvmpresync_guest_progress_units_per_second"));
        Assert.Equal(1, (await PrometheusText.ScrapeAsync(endpoint.Url, ct))["kvmpresync_migration_succeeded"]);
    }
}
