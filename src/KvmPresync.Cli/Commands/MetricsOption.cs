using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using KvmPresync.Metrics;
using Prometheus;

namespace KvmPresync.Cli.Commands;

/// <summary>
/// <c>--metrics ADDRESS:PORT</c> (run --presync-to, libvirt presync, receive): a Prometheus <c>/metrics</c> endpoint over
/// this command's own registry, started before any work so a bad address fails at once (docs/METRICS.md).
/// </summary>
internal static class MetricsOption
{
    public static Option<string?> Create(string what) => new("--metrics")
    {
        Description = $"Serve Prometheus metrics at http://ADDRESS:PORT/metrics (e.g. 127.0.0.1:9477; port 0: any free port, printed at start) of {what}. " +
                      "Names and meanings: docs/METRICS.md",
    };

    /// <summary>The endpoint and its registry, or null when <paramref name="text"/> is null; prints where it serves.</summary>
    public static MetricsServing? Start(string? text)
    {
        if (text is null) return null;
        if (!IPEndPoint.TryParse(text.Trim(), out IPEndPoint? at) || text.IndexOf(':') < 0)
            throw new ArgumentException($"--metrics: '{text}' is not ADDRESS:PORT (e.g. 127.0.0.1:9477, [::1]:9477, or 0.0.0.0:9477 for every interface)");
        CollectorRegistry registry = Prometheus.Metrics.NewCustomRegistry();
        MetricsEndpoint endpoint;
        try
        {
            endpoint = MetricsEndpoint.Start(at, registry);
        }
        catch (SocketException e)
        {
            string what = e.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => $"port {at.Port} is in use on {at.Address} (another exporter or an earlier kvmpresync?); choose another port, or 0 for any free one",
                SocketError.AddressNotAvailable => $"{at.Address} is not an address of this host; use one of its addresses, 127.0.0.1, or 0.0.0.0 for every interface",
                SocketError.AccessDenied => $"binding port {at.Port} is not permitted (ports below 1024 need privileges); choose a port above 1023",
                _ => $"{e.Message}",
            };
            throw new ArgumentException($"--metrics {at}: cannot listen: {what}");
        }
        Console.WriteLine($"metrics: {endpoint.Url}");
        return new MetricsServing(registry, endpoint);
    }
}

/// <summary>A command's metrics registry and the endpoint serving it; disposing stops the endpoint.</summary>
internal sealed class MetricsServing(CollectorRegistry registry, MetricsEndpoint endpoint) : IAsyncDisposable
{
    public CollectorRegistry Registry { get; } = registry;

    public MetricsEndpoint Endpoint { get; } = endpoint;

    public ValueTask DisposeAsync() => Endpoint.DisposeAsync();
}
