using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using KvmPresync.Cli;
using KvmPresync.Tests.Migration;

namespace KvmPresync.Tests.Metrics;

/// <summary>
/// <c>--metrics</c> on the published <c>kvmpresync</c>, as a process: in the help of the three commands that take it,
/// a bad value and a busy port refused at once with the option named and what to do, and a <c>receive</c> service
/// serving /metrics on the port it printed until it is stopped.
/// </summary>
public sealed class MetricsCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmpresync-metrics-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Code, string Output)> RunAsync(params string[] args)
    {
        using var cli = CliProcess.Start(args);
        int code = await cli.WaitForExitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        return (code, cli.Output);
    }

    [Theory]
    [InlineData("run")]
    [InlineData("receive")]
    [InlineData("libvirt", "presync")]
    public async Task The_help_of_each_command_that_serves_metrics_describes_metrics(params string[] command)
    {
        (int code, string output) = await RunAsync([.. command, "--help"]);
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("--metrics <metrics>", output);
        Assert.Contains("/metrics", output);
        Assert.Contains("docs/METRICS.md", output);
    }

    [Fact]
    public async Task A_value_that_is_not_an_address_and_port_and_a_port_in_use_are_refused_naming_metrics_and_what_to_do()
    {
        string key = CliTestSupport.WriteKey(_dir, 7);
        string listen = $"127.0.0.1:{CliTestSupport.FreePort()}";
        (int code, string output) = await RunAsync("receive", "--listen", listen, "--psk-file", key, "--metrics", "localhost");
        Assert.Equal(ExitCodes.Error, code);
        Assert.Contains("--metrics: 'localhost' is not ADDRESS:PORT", output);

        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        int port = ((IPEndPoint)taken.LocalEndPoint!).Port;
        (code, output) = await RunAsync("receive", "--listen", listen, "--psk-file", key, "--metrics", $"127.0.0.1:{port}");
        Assert.Equal(ExitCodes.Error, code);
        Assert.Contains($"--metrics 127.0.0.1:{port}: cannot listen: port {port} is in use", output);
        Assert.Contains("choose another port, or 0 for any free one", output);

        (code, output) = await RunAsync("run", "--workload", "text", "--metrics", "127.0.0.1:0");
        Assert.Equal(ExitCodes.Error, code);
        Assert.Contains("--metrics needs --presync-to", output);
    }

    [Fact]
    public async Task Receive_with_metrics_on_port_0_prints_the_url_serves_it_and_frees_it_when_stopped()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        string key = CliTestSupport.WriteKey(_dir, 7);
        using var cli = CliProcess.Start("receive", "--listen", $"127.0.0.1:{CliTestSupport.FreePort()}", "--psk-file", key, "--max-memory", "1G", "--metrics", "127.0.0.1:0");
        cli.WaitForOutput("listening on", TimeSpan.FromSeconds(30));
        var url = new Uri(Regex.Match(cli.Output, @"metrics: (http://127\.0\.0\.1:\d+/metrics)").Groups[1].Value);
        PrometheusText scrape = await PrometheusText.ScrapeAsync(url, ct);
        Assert.Equal(0, scrape["kvmpresync_receive_sessions_active"]);
        Assert.Equal(0, scrape["kvmpresync_receive_sessions_refused_total{reason=\"busy\"}"]);
        Assert.DoesNotContain("process_", scrape.Text); // its own registry, not the default one with process metrics

        cli.Signal("TERM");
        Assert.Equal(ExitCodes.Ok, await cli.WaitForExitAsync(TimeSpan.FromSeconds(30), ct));
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await probe.ConnectAsync(new IPEndPoint(IPAddress.Loopback, url.Port), ct));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }
}
