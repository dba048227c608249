using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Metrics;
using KvmPresync.Migration;
using KvmPresync.Wire;
using Prometheus;

namespace KvmPresync.Tests.Metrics;

/// <summary>
/// The exporter's names and the things that ship with them: Prometheus conventions (prefix, base units, <c>_total</c> on
/// counters only, HELP on each), the dashboard in contrib/ querying only names the exporter has, and docs/METRICS.md
/// listing every one. Fed by hand-made records (the live values are <see cref="PresyncMetricsTests"/>'s).
/// </summary>
public sealed class ExporterTests
{
    private static string RepoRoot()
    {
        string? d = AppContext.BaseDirectory;
        while (d is not null && !File.Exists(Path.Combine(d, "KvmPresync.sln"))) d = Path.GetDirectoryName(d);
        return d ?? throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Every metric both binders export, each with a value (those absent until set are set).</summary>
    private static async Task<string> FullExportAsync(CancellationToken ct)
    {
        CollectorRegistry registry = Prometheus.Metrics.NewCustomRegistry();
        var sender = new SenderMetrics(registry, 4096, guestReportsProgress: true);
        RoundRecord Round(long n, double timeMs) => new()
        {
            Round = n, Phase = RoundPhase.Sync, TimeMs = timeMs, DirtyPages = 100, PendingPages = 50, SentPages = 40, SentBytes = 40 * 4200,
            HeldPages = 5, HeldBytes = 5 * 4200, DeferredPages = 5, WindowBytes = 1 << 20, IntervalMs = 100, RemainingAtLaunchBytes = 10 * 4200,
            RttMs = 1.5, AckedBytes = 40 * 4200, ProgressRate = 50, Readiness = new ReadinessEstimate(30, 10, 12345, 1),
        };
        sender.Observe(Round(0, 0));
        sender.Observe(Round(1, 100));
        sender.Complete(new MigrationResult { Succeeded = true, LaunchToResumeMs = 40, DowntimeMs = 12, SyncBytes = 1000, LaunchBytes = 100 });

        var receiver = new ReceiverMetrics(registry);
        var peer = new IPEndPoint(IPAddress.Loopback, 40000);
        receiver.Admitted(new ReceiveSessionAdmitted("s1", peer, 1 << 20));
        receiver.Admitted(new ReceiveSessionAdmitted("s2", peer, 1 << 20));
        receiver.Ended(new ReceiveSessionEnded("s1", peer, new ReceiveResult { Resumed = true, ResumeMs = 5, BytesReceived = 1000 }, null));
        receiver.Ended(new ReceiveSessionEnded("s3", peer, new ReceiveResult { Resumed = false, FailedIn = ReceiverPhase.AwaitAuthProof, AbortReceived = AbortReason.AuthenticationFailed }, null));

        using var text = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(text, ct);
        return System.Text.Encoding.UTF8.GetString(text.ToArray());
    }

    [Fact]
    public async Task Every_metric_has_the_kvmpresync_prefix_a_HELP_text_base_units_and_total_exactly_on_counters()
    {
        string export = await FullExportAsync(TestContext.Current.CancellationToken);
        PrometheusText parsed = PrometheusText.Parse(export);
        Dictionary<string, string> types = Regex.Matches(export, @"(?m)^# TYPE (\S+) (\S+)$").ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        Assert.True(types.Count >= 30, $"{types.Count} families:\n{export}");
        foreach ((string name, string type) in types)
        {
            Assert.StartsWith("kvmpresync_", name);
            Assert.Matches("^[a-z_]+$", name);
            Assert.True(parsed.Help.TryGetValue(name, out string? help) && help.Length > 20, $"{name}: HELP missing or too short");
            Assert.Equal(type == "counter", name.EndsWith("_total", StringComparison.Ordinal));
            Assert.DoesNotMatch("_(ms|milliseconds|kb|mb|mib|percent)(_|$)", name); // base units only
        }
        Assert.Equal(1, parsed["kvmpresync_receive_sessions_active"]); // s2 still active
        Assert.Equal(1, parsed["kvmpresync_receive_sessions_refused_total{reason=\"authentication_failed\"}"]);
        Assert.Single(parsed.Samples, s => s.Key.StartsWith("kvmpresync_receive_session_memory_bytes{session=\"s2\"", StringComparison.Ordinal));
        Assert.Equal(1000.0, parsed["kvmpresync_sender_dirty_pages_per_second"]); // 100 pages in 100 ms
        Assert.Equal(0.0015, parsed["kvmpresync_sender_rtt_seconds"], 12);
    }

    [Fact]
    public async Task The_Grafana_dashboard_is_valid_JSON_with_a_Prometheus_datasource_variable_and_queries_only_metrics_the_exporter_has()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        PrometheusText export = PrometheusText.Parse(await FullExportAsync(ct));
        using JsonDocument dashboard = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(RepoRoot(), "contrib", "grafana-kvmpresync.json"), ct));
        JsonElement root = dashboard.RootElement;
        Assert.Contains(root.GetProperty("templating").GetProperty("list").EnumerateArray(),
            v => v.GetProperty("type").GetString() == "datasource" && v.GetProperty("query").GetString() == "prometheus" && v.GetProperty("name").GetString() == "datasource");

        var queried = new HashSet<string>();
        var titles = new List<string>();
        foreach (JsonElement panel in root.GetProperty("panels").EnumerateArray())
        {
            titles.Add(panel.GetProperty("title").GetString()!);
            Assert.Equal("${datasource}", panel.GetProperty("datasource").GetProperty("uid").GetString());
            foreach (JsonElement target in panel.GetProperty("targets").EnumerateArray())
                foreach (Match m in Regex.Matches(target.GetProperty("expr").GetString()!, @"kvmpresync_[a-z_]+"))
                    queried.Add(m.Value);
        }
        Assert.All(queried, name => Assert.True(export.Families.Contains(name), $"the dashboard queries {name}, which the exporter does not have"));
        foreach (string needed in new[] { "kvmpresync_sender_dirty_pages_per_second", "kvmpresync_sender_pending_bytes", "kvmpresync_sender_held_bytes",
                     "kvmpresync_sender_deferred_bytes", "kvmpresync_sender_window_bytes", "kvmpresync_sender_rtt_seconds", "kvmpresync_sender_sent_bytes_total",
                     "kvmpresync_readiness_launch_to_resume_seconds", "kvmpresync_readiness_downtime_seconds", "kvmpresync_receive_sessions_active",
                     "kvmpresync_receive_sessions_refused_total" })
            Assert.Contains(needed, queried);
        Assert.Equal(titles.Count, titles.Distinct().Count());
    }

    [Fact]
    public async Task Docs_METRICS_md_lists_every_metric_the_exporter_has_and_no_other()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        PrometheusText export = PrometheusText.Parse(await FullExportAsync(ct));
        string doc = await File.ReadAllTextAsync(Path.Combine(RepoRoot(), "docs", "METRICS.md"), ct);
        var documented = Regex.Matches(doc, @"`(kvmpresync_[a-z_]+)[`{]").Select(m => m.Groups[1].Value).ToHashSet();
        Assert.Empty(export.Families.Except(documented));
        Assert.Empty(documented.Except(export.Families));
    }

    [Theory]
    [InlineData(AbortReason.AuthenticationFailed, "authentication_failed")]
    [InlineData(AbortReason.Busy, "busy")]
    [InlineData(AbortReason.InsufficientMemory, "insufficient_memory")]
    public void Abort_reasons_become_snake_case_labels(AbortReason reason, string label) => Assert.Equal(label, ReceiverMetrics.ReasonLabel(reason));
}
