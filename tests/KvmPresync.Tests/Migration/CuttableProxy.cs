using System.Net;
using System.Net.Sockets;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// A TCP proxy on 127.0.0.1 for any number of connections to a switchable upstream: <see cref="Cut"/> closes every
/// connection (a reset link); <see cref="Blackhole"/> stops forwarding without closing anything (a downed link TCP has
/// not noticed), until <see cref="Restore"/>.
/// </summary>
internal sealed class CuttableProxy : IDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _cts = new();
    private readonly List<(Socket Down, Socket Up)> _pairs = [];
    private volatile bool _blackhole;

    public CuttableProxy(IPEndPoint upstream)
    {
        Upstream = upstream;
        _listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        Endpoint = (IPEndPoint)_listener.LocalEndPoint!;
        _ = Task.Run(AcceptAsync);
    }

    public IPEndPoint Endpoint { get; }

    public IPEndPoint Upstream { get; set; }

    public int Connections { get; private set; }

    public void Cut()
    {
        lock (_pairs)
        {
            foreach ((Socket down, Socket up) in _pairs)
            {
                down.Close(0);
                up.Close(0);
            }
            _pairs.Clear();
        }
    }

    /// <summary>Resets the <paramref name="index"/>-th connection accepted (0 = the first) in both directions; the others go on.</summary>
    public void CutConnection(int index)
    {
        lock (_pairs)
        {
            (Socket down, Socket up) = _pairs[index];
            down.Close(0);
            up.Close(0);
        }
    }

    /// <summary>Existing connections stop forwarding (their bytes are dropped) and stay open; new connections are refused.</summary>
    public void Blackhole() => _blackhole = true;

    public void Restore() => _blackhole = false;

    private async Task AcceptAsync()
    {
        while (!_cts.IsCancellationRequested)
        {
            Socket down;
            try { down = await _listener.AcceptAsync(_cts.Token); } catch { return; }
            if (_blackhole)
            {
                down.Close(0);
                continue;
            }
            var up = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try { await up.ConnectAsync(Upstream, _cts.Token); }
            catch { down.Close(0); up.Dispose(); continue; }
            lock (_pairs) _pairs.Add((down, up));
            Connections++;
            _ = Pump(down, up);
            _ = Pump(up, down);
        }
    }

    private async Task Pump(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int n = await from.ReceiveAsync(buffer, SocketFlags.None, _cts.Token);
                if (n == 0)
                {
                    if (_blackhole) return; // a downed link carries no FIN either
                    break;
                }
                if (_blackhole) continue; // the link swallows everything
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _cts.Token);
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch
        {
            if (_blackhole) return; // nor a reset
            try { from.Close(0); to.Close(0); } catch { }
        }
    }

    public void Dispose()
    {
        _cts.Cancel();
        _listener.Dispose();
        Cut();
    }
}
