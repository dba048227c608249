using System.Net;
using System.Net.Sockets;
using System.Text;
using Prometheus;

namespace KvmPresync.Metrics;

/// <summary>Limits a <see cref="MetricsEndpoint"/> puts on its scrapers.</summary>
public sealed record MetricsEndpointOptions
{
    /// <summary>A request's head (request line and headers) must arrive, and the answer be written, within this time.</summary>
    public TimeSpan RequestTimeout { get; init => field = OptionGuard.Positive(value, nameof(MetricsEndpointOptions)); } = TimeSpan.FromSeconds(5);

    /// <summary>The largest request head read; a larger one gets 431 and the connection is closed.</summary>
    public int MaxRequestBytes { get; init => field = OptionGuard.Require(value, value is >= 256 and <= 1 << 20, nameof(MetricsEndpointOptions), "must be between 256 and 1048576 bytes"); } = 8192;

    /// <summary>Connections served at the same time; one more is closed at once.</summary>
    public int MaxConnections { get; init => field = OptionGuard.Require(value, value is >= 1 and <= 1024, nameof(MetricsEndpointOptions), "must be between 1 and 1024"); } = 16;
}

/// <summary>
/// A minimal HTTP/1.1 server for one registry: <c>GET /metrics</c> (or HEAD) answers the Prometheus text format (500 if a collector throws), any
/// other path 404, any other method 405; one request per connection (<c>Connection: close</c>). Built on a socket
/// rather than <see cref="HttpListener"/> so that port 0 works and the bound port is known (<see cref="LocalEndpoint"/>).
/// A scraper that sends garbage, too much, or nothing is answered 400/431 or dropped at <see cref="MetricsEndpointOptions.RequestTimeout"/>;
/// nothing a scraper does ends the accept loop or reaches the migration. <see cref="DisposeAsync"/> stops it.
/// </summary>
public sealed class MetricsEndpoint : IAsyncDisposable, IDisposable
{
    /// <summary>The exposition format's content type (text format 0.0.4).</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private static readonly byte[] HeadEnd = "\r\n\r\n"u8.ToArray();

    private readonly CollectorRegistry _registry;
    private readonly MetricsEndpointOptions _options;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly SemaphoreSlim _slots;
    private int _disposed;
    private long _answered, _dropped;

    private MetricsEndpoint(Socket listener, CollectorRegistry registry, MetricsEndpointOptions options)
    {
        _listener = listener;
        _registry = registry;
        _options = options;
        _slots = new SemaphoreSlim(options.MaxConnections, options.MaxConnections);
        LocalEndpoint = (IPEndPoint)listener.LocalEndPoint!;
        _accepting = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The address and port bound (the real port when 0 was asked).</summary>
    public IPEndPoint LocalEndpoint { get; }

    /// <summary>http://ADDRESS:PORT/metrics.</summary>
    public Uri Url => new($"http://{(LocalEndpoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{LocalEndpoint.Address}]" : LocalEndpoint.Address.ToString())}:{LocalEndpoint.Port}/metrics");

    /// <summary>Requests answered so far (any status), and connections dropped (timeout, too many, reset).</summary>
    public long Answered => Interlocked.Read(ref _answered);

    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>
    /// Binds <paramref name="at"/> (port 0: any free port) and serves <paramref name="registry"/>. Throws
    /// <see cref="SocketException"/> when the address cannot be bound (in use, not this host's, not permitted).
    /// </summary>
    public static MetricsEndpoint Start(IPEndPoint at, CollectorRegistry registry, MetricsEndpointOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(at);
        ArgumentNullException.ThrowIfNull(registry);
        options ??= new MetricsEndpointOptions();
        if (options.MaxConnections < 1) throw new ArgumentOutOfRangeException(nameof(options), options.MaxConnections, "at least one connection must be allowed");
        if (options.MaxRequestBytes < 64) throw new ArgumentOutOfRangeException(nameof(options), options.MaxRequestBytes, "a request head needs at least 64 bytes");
        var listener = new Socket(at.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // no ReuseAddress: on Linux .NET maps it to SO_REUSEPORT as well, and a second exporter would share the port silently
            listener.Bind(at);
            listener.Listen(32);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        return new MetricsEndpoint(listener, registry, options);
    }

    private async Task AcceptLoopAsync()
    {
        var serving = new List<Task>();
        while (!_stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (ObjectDisposedException)
            {
                break;
            }
            catch (SocketException)
            {
                // e.g. out of file descriptors, or a connection reset before it was accepted: keep serving
                try { await Task.Delay(50, _stop.Token).ConfigureAwait(false); } catch (OperationCanceledException) { break; }
                continue;
            }
            if (!_slots.Wait(0))
            {
                Interlocked.Increment(ref _dropped);
                connection.Dispose(); // too many at once: a scraper retries at its next interval
                continue;
            }
            serving.RemoveAll(t => t.IsCompleted);
            serving.Add(ServeAsync(connection));
        }
        await Task.WhenAll(serving).ConfigureAwait(false);
    }

    private async Task ServeAsync(Socket connection)
    {
        await Task.Yield(); // off the accept loop
        using Socket owned = connection;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(_options.RequestTimeout);
        try
        {
            (int status, bool head) = await ReadRequestAsync(connection, timeout.Token).ConfigureAwait(false);
            await AnswerAsync(connection, status, head, timeout.Token).ConfigureAwait(false);
            Interlocked.Increment(ref _answered);
            connection.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _dropped); // slow, silent or gone: just close
        }
        catch (Exception)
        {
            Interlocked.Increment(ref _dropped); // a collector's failure must not escape into the process (unobserved task)
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>Reads the request head; returns the status to answer (200, 400, 404, 405, 431) and whether it was HEAD.</summary>
    private async Task<(int Status, bool Head)> ReadRequestAsync(Socket connection, CancellationToken ct)
    {
        byte[] buffer = new byte[_options.MaxRequestBytes];
        int filled = 0;
        int end;
        while ((end = HeadLength(buffer.AsSpan(0, filled))) < 0)
        {
            if (filled == buffer.Length) return (431, false);
            int n = await connection.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0) throw new IOException("the scraper closed the connection before the end of its request");
            filled += n;
        }
        return Classify(Encoding.ASCII.GetString(buffer, 0, end));
    }

    /// <summary>Where the head ends (the blank line: CRLF CRLF, or LF LF from a lenient client), or -1 when not yet.</summary>
    private static int HeadLength(ReadOnlySpan<byte> received)
    {
        int crlf = received.IndexOf(HeadEnd);
        int lf = received.IndexOf("\n\n"u8);
        return crlf < 0 ? lf : lf < 0 ? crlf : Math.Min(crlf, lf);
    }

    /// <summary>The status for a request head (request line first); pure, for tests.</summary>
    internal static (int Status, bool Head) Classify(string head)
    {
        int lineEnd = head.IndexOf('\n');
        string line = (lineEnd < 0 ? head : head[..lineEnd]).TrimEnd('\r');
        string[] parts = line.Split(' ');
        if (parts.Length != 3 || parts[0].Length == 0 || !parts[1].StartsWith('/') || parts[2] is not ("HTTP/1.1" or "HTTP/1.0"))
            return (400, false);
        bool head_ = parts[0] == "HEAD";
        if (parts[0] != "GET" && !head_) return (405, false);
        string path = parts[1];
        int query = path.IndexOf('?');
        if (query >= 0) path = path[..query];
        return (path == "/metrics" ? 200 : 404, head_);
    }

    private async Task AnswerAsync(Socket connection, int status, bool head, CancellationToken ct)
    {
        byte[] body = [];
        string contentType = ContentType;
        string? collectFailure = null;
        if (status == 200)
        {
            try
            {
                using var text = new MemoryStream();
                await _registry.CollectAndExportAsTextAsync(text, ct).ConfigureAwait(false);
                body = text.ToArray();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                status = 500; // a collector's failure is the scraper's answer, never the process's problem
                collectFailure = $"collecting the metrics failed: {e.GetType().Name}: {e.Message}\n";
            }
        }
        if (status != 200)
        {
            body = Encoding.ASCII.GetBytes(status switch
            {
                404 => "not found: metrics are at /metrics\n",
                405 => "method not allowed: GET /metrics\n",
                431 => "request head too large\n",
                500 => collectFailure!,
                _ => "bad request\n",
            });
            contentType = "text/plain; charset=utf-8";
        }
        string reason = status switch { 200 => "OK", 404 => "Not Found", 405 => "Method Not Allowed", 431 => "Request Header Fields Too Large", 500 => "Internal Server Error", _ => "Bad Request" };
        var header = new StringBuilder();
        header.Append("HTTP/1.1 ").Append(status).Append(' ').Append(reason).Append("\r\n");
        header.Append("Content-Type: ").Append(contentType).Append("\r\n");
        header.Append("Content-Length: ").Append(body.Length).Append("\r\n");
        if (status == 405) header.Append("Allow: GET, HEAD\r\n");
        header.Append("Connection: close\r\n\r\n");
        await SendAllAsync(connection, Encoding.ASCII.GetBytes(header.ToString()), ct).ConfigureAwait(false);
        if (!head) await SendAllAsync(connection, body, ct).ConfigureAwait(false);
    }

    private static async Task SendAllAsync(Socket connection, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (!data.IsEmpty)
        {
            int n = await connection.SendAsync(data, SocketFlags.None, ct).ConfigureAwait(false);
            data = data[n..];
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        _listener.Dispose();
        await _accepting.ConfigureAwait(false);
        _stop.Dispose();
        _slots.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
