using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// Stands in front of a receiver as a 1.2 receiver's Hello decoding would: a Hello offering an option bit 1.2 does not
/// know (anything above DeferredHandover) is refused with Abort(UnsupportedOption) and the connection closed; any other
/// connection is forwarded to the real receiver unchanged. Accepts connections until disposed.
/// </summary>
internal sealed class Receiver12Proxy : IDisposable
{
    private const uint KnownTo12 = 0xF;
    private readonly Socket _listener;
    private readonly IPEndPoint _upstream;
    private readonly CancellationTokenSource _cts = new();

    public Receiver12Proxy(IPEndPoint upstream)
    {
        _upstream = upstream;
        _listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        Endpoint = (IPEndPoint)_listener.LocalEndPoint!;
        _ = Task.Run(AcceptAsync);
    }

    public IPEndPoint Endpoint { get; }

    /// <summary>Hellos refused for an unknown bit.</summary>
    public int Refused { get; private set; }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                Socket down = await _listener.AcceptAsync(_cts.Token);
                _ = Task.Run(() => ServeAsync(down));
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private async Task ServeAsync(Socket down)
    {
        using (down)
        {
            try
            {
                byte[] header = new byte[FrameHeader.Size];
                await ReadExactly(down, header);
                byte[] body = new byte[BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(8))];
                await ReadExactly(down, body);
                uint options = BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(16));
                if ((options & ~KnownTo12) != 0)
                {
                    Refused++;
                    await new FrameWriter(down).WriteAsync(new Abort(AbortReason.UnsupportedOption,
                        $"Hello: option bits 0x{options & ~KnownTo12:x} are not defined in protocol 1.2"), _cts.Token);
                    down.Shutdown(SocketShutdown.Both);
                    return;
                }
                using var up = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await up.ConnectAsync(_upstream, _cts.Token);
                await up.SendAsync(header, SocketFlags.None, _cts.Token);
                await up.SendAsync(body, SocketFlags.None, _cts.Token);
                await Task.WhenAny(Pump(up, down), Pump(down, up));
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException or IOException)
            {
            }
        }
    }

    private async Task Pump(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await from.ReceiveAsync(buffer, SocketFlags.None, _cts.Token)) > 0)
            await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _cts.Token);
        to.Shutdown(SocketShutdown.Send);
    }

    private async Task ReadExactly(Socket from, byte[] into)
    {
        int got = 0;
        while (got < into.Length)
        {
            int n = await from.ReceiveAsync(into.AsMemory(got), SocketFlags.None, _cts.Token);
            if (n == 0) throw new IOException("the sender closed the connection");
            got += n;
        }
    }

    public void Dispose()
    {
        _cts.Cancel();
        _listener.Dispose();
    }
}
