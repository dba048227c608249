using System.Net;
using System.Net.Sockets;
using System.Text;
using KvmPresync.Metrics;
using Prometheus;

namespace KvmPresync.Tests.Metrics;

/// <summary>
/// The /metrics endpoint over real sockets: port 0 and the bound port, the Prometheus text format on GET, and a scraper
/// that sends garbage, too much, nothing, or too many connections gets an error status or a closed connection while
/// the endpoint keeps serving. Disposing stops it.
/// </summary>
public sealed class MetricsEndpointTests
{
    private static CollectorRegistry RegistryWithOneGauge()
    {
        CollectorRegistry registry = Prometheus.Metrics.NewCustomRegistry();
        Prometheus.Metrics.WithCustomRegistry(registry).CreateGauge("kvmpresync_test_value", "A test gauge.").Set(42);
        return registry;
    }

    /// <summary>Sends <paramref name="request"/> raw and returns everything the endpoint answers until it closes.</summary>
    private static async Task<string> RawAsync(IPEndPoint at, byte[] request, CancellationToken ct)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(at, ct);
        try
        {
            await socket.SendAsync(request, ct);
        }
        catch (SocketException)
        {
            // the endpoint may close while a huge request is still being sent
        }
        return await ReadToCloseAsync(socket, ct);
    }

    private static async Task<string> ReadToCloseAsync(Socket socket, CancellationToken ct)
    {
        var answer = new MemoryStream();
        byte[] buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await socket.ReceiveAsync(buffer, ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), ct)) > 0) answer.Write(buffer, 0, n);
        }
        catch (SocketException)
        {
            // reset after a refused request: what arrived is the answer
        }
        return Encoding.ASCII.GetString(answer.ToArray());
    }

    private static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);

    [Fact]
    public async Task Port_0_binds_a_free_port_and_GET_metrics_answers_the_text_format_with_each_metrics_help()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var endpoint = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), RegistryWithOneGauge());
        Assert.NotEqual(0, endpoint.LocalEndpoint.Port);
        Assert.Equal($"http://127.0.0.1:{endpoint.LocalEndpoint.Port}/metrics", endpoint.Url.ToString());

        PrometheusText scrape = await PrometheusText.ScrapeAsync(endpoint.Url, ct);
        Assert.Equal(42, scrape["kvmpresync_test_value"]);
        Assert.Equal("A test gauge.", scrape.Help["kvmpresync_test_value"]);

        string head = await RawAsync(endpoint.LocalEndpoint, Ascii("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), ct);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", head);
        Assert.EndsWith("\r\n\r\n", head); // no body on HEAD
        string query = await RawAsync(endpoint.LocalEndpoint, Ascii("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), ct);
        Assert.Contains("kvmpresync_test_value 42", query);
        string bareLf = await RawAsync(endpoint.LocalEndpoint, Ascii("GET /metrics HTTP/1.1\nHost: x\n\n"), ct); // e.g. printf | nc
        Assert.Contains("kvmpresync_test_value 42", bareLf);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found")]
    [InlineData("GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found")]
    [InlineData("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed")]
    [InlineData("DELETE /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed")]
    [InlineData("\u0001\u0002garbage\r\n\r\n", "HTTP/1.1 400 Bad Request")]
    [InlineData("GET /metrics\r\n\r\n", "HTTP/1.1 400 Bad Request")]
    [InlineData("GET metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request")]
    [InlineData("GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 400 Bad Request")]
    public async Task A_request_other_than_GET_metrics_gets_its_error_status_and_the_endpoint_keeps_serving(string request, string statusLine)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var endpoint = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), RegistryWithOneGauge());
        string answer = await RawAsync(endpoint.LocalEndpoint, Ascii(request), ct);
        Assert.StartsWith(statusLine + "\r\n", answer);
        Assert.Contains("Connection: close\r\n", answer);
        if (statusLine.Contains("405")) Assert.Contains("Allow: GET, HEAD\r\n", answer);
        Assert.DoesNotContain("kvmpresync_test_value", answer);
        Assert.Equal(42, (await PrometheusText.ScrapeAsync(endpoint.Url, ct))["kvmpresync_test_value"]);
    }

    [Fact]
    public async Task A_request_head_beyond_the_size_limit_gets_431_and_is_closed()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var endpoint = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), RegistryWithOneGauge(), new MetricsEndpointOptions { MaxRequestBytes = 1024 });
        string huge = "GET /metrics HTTP/1.1\r\nX-Filler: " + new string('a', 64 * 1024) + "\r\n\r\n";
        string answer = await RawAsync(endpoint.LocalEndpoint, Ascii(huge), ct);
        Assert.StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n", answer);
        Assert.Equal(42, (await PrometheusText.ScrapeAsync(endpoint.Url, ct))["kvmpresync_test_value"]);
    }

    [Fact]
    public async Task A_silent_or_slow_scraper_is_dropped_at_the_timeout_while_others_are_served_and_excess_connections_are_closed()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var endpoint = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), RegistryWithOneGauge(),
            new MetricsEndpointOptions { RequestTimeout = TimeSpan.FromMilliseconds(500), MaxConnections = 2 });

        // two connections that send half a request and nothing more hold both slots
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var slow = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await silent.ConnectAsync(endpoint.LocalEndpoint, ct);
        await slow.ConnectAsync(endpoint.LocalEndpoint, ct);
        await slow.SendAsync(Ascii("GET /met"), ct);
        await Task.Delay(100, ct);
        // a third is closed at once (no answer)
        string third = await RawAsync(endpoint.LocalEndpoint, Ascii("GET /metrics HTTP/1.1\r\n\r\n"), ct);
        Assert.Equal("", third);

        // both are dropped at the timeout: closed without an answer
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal("", await ReadToCloseAsync(silent, ct));
        Assert.Equal("", await ReadToCloseAsync(slow, ct));
        Assert.InRange(clock.Elapsed.TotalSeconds, 0, 5);
        Assert.True(endpoint.Dropped >= 3, $"dropped {endpoint.Dropped}");

        // and the slots are free again
        Assert.Equal(42, (await PrometheusText.ScrapeAsync(endpoint.Url, ct))["kvmpresync_test_value"]);
    }

    [Fact]
    public async Task A_busy_port_throws_address_in_use_and_disposing_frees_the_port()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        var endpoint = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), RegistryWithOneGauge());
        IPEndPoint bound = endpoint.LocalEndpoint;
        var busy = Assert.Throws<SocketException>(() => MetricsEndpoint.Start(bound, RegistryWithOneGauge()));
        Assert.Equal(SocketError.AddressAlreadyInUse, busy.SocketErrorCode);

        await endpoint.DisposeAsync();
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            var refused = await Assert.ThrowsAsync<SocketException>(async () => await probe.ConnectAsync(bound, ct));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }
        await using var again = MetricsEndpoint.Start(bound, RegistryWithOneGauge()); // the port is free again
        Assert.Equal(bound.Port, again.LocalEndpoint.Port);
    }

    [Fact]
    public async Task A_collector_callback_that_throws_does_not_end_the_scrape_or_the_endpoint()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        CollectorRegistry registry = RegistryWithOneGauge();
        registry.AddBeforeCollectCallback(() => throw new InvalidOperationException("collector broke"));
        await using var endpoint = MetricsEndpoint.Start(new IPEndPoint(IPAddress.Loopback, 0), registry);
        for (int i = 0; i < 3; i++)
        {
            string answer = await RawAsync(endpoint.LocalEndpoint, Ascii("GET /metrics HTTP/1.1\r\n\r\n"), ct);
            Assert.True(answer.StartsWith("HTTP/1.1 200 OK\r\n", StringComparison.Ordinal) || answer.StartsWith("HTTP/1.1 500 Internal Server Error\r\n", StringComparison.Ordinal), answer);
        }
        Assert.Equal(3, endpoint.Answered);
    }
}
