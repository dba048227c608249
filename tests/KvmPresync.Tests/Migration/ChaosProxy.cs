using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// A TCP proxy on 127.0.0.1 that forwards sender ⇄ receiver and, reading the sender's frame headers
/// (16 bytes: u32 type, u32 flags, u64 body length), cuts both connections when the chosen frame type has
/// been seen <c>count</c> times — the receiver "dies" at an exact protocol phase.
/// </summary>
internal sealed class ChaosProxy : IDisposable
{
    private readonly Socket _listener;
    private readonly IPEndPoint _upstream;
    private readonly FrameType _cutAt;
    private readonly int _count;
    private readonly CancellationTokenSource _cts = new();

    public ChaosProxy(IPEndPoint upstream, FrameType cutAt, int count = 1)
    {
        _upstream = upstream;
        _cutAt = cutAt;
        _count = count;
        _listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        Endpoint = (IPEndPoint)_listener.LocalEndPoint!;
        Run = Task.Run(RunAsync);
    }

    public IPEndPoint Endpoint { get; }

    public Task Run { get; }

    /// <summary>True once the connection was cut at the chosen frame.</summary>
    public bool Cut { get; private set; }

    private async Task RunAsync()
    {
        using Socket down = await _listener.AcceptAsync(_cts.Token);
        using var up = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await up.ConnectAsync(_upstream, _cts.Token);
        Task back = Pump(up, down, inspect: false);
        Task forth = Pump(down, up, inspect: true);
        await Task.WhenAny(back, forth);
        down.Close(0);
        up.Close(0);
    }

    private async Task Pump(Socket from, Socket to, bool inspect)
    {
        var buffer = new byte[64 * 1024];
        long frameRemaining = 0; // bytes of the current frame (header or body) still to pass
        var header = new byte[FrameHeader.Size];
        int headerFill = 0;
        int seen = 0;
        try
        {
            while (true)
            {
                int n = await from.ReceiveAsync(buffer, SocketFlags.None, _cts.Token);
                if (n == 0) return;
                if (!inspect)
                {
                    await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _cts.Token);
                    continue;
                }
                int i = 0;
                while (i < n)
                {
                    if (frameRemaining > 0)
                    {
                        int take = (int)Math.Min(frameRemaining, n - i);
                        await to.SendAsync(buffer.AsMemory(i, take), SocketFlags.None, _cts.Token);
                        frameRemaining -= take;
                        i += take;
                        continue;
                    }
                    header[headerFill++] = buffer[i++];
                    if (headerFill < FrameHeader.Size) continue;
                    headerFill = 0;
                    var type = (FrameType)BinaryPrimitives.ReadUInt32LittleEndian(header);
                    if (type == _cutAt && ++seen >= _count)
                    {
                        Cut = true;
                        return; // the receiver "dies" before this frame reaches it
                    }
                    await to.SendAsync(header, SocketFlags.None, _cts.Token);
                    frameRemaining = (long)BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(8));
                }
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    public void Dispose()
    {
        _cts.Cancel();
        _listener.Dispose();
    }
}
