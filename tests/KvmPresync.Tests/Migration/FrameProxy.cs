using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// A TCP proxy on 127.0.0.1 between a sender and a receiver (one connection). Receiver → sender is copied unchanged;
/// sender → receiver goes frame by frame (16-byte header: u32 type, u32 flags, u64 body length; the body read whole), and
/// each frame is handed to <c>onFrame</c> first, which may change the body in place and returns false to cut both
/// connections before the frame reaches the receiver.
/// </summary>
internal sealed class FrameProxy : IDisposable
{
    private readonly Socket _listener;
    private readonly IPEndPoint _upstream;
    private readonly Func<FrameType, byte[], bool> _onFrame;
    private readonly CancellationTokenSource _cts = new();

    public FrameProxy(IPEndPoint upstream, Func<FrameType, byte[], bool> onFrame)
    {
        _upstream = upstream;
        _onFrame = onFrame;
        _listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        Endpoint = (IPEndPoint)_listener.LocalEndPoint!;
        Run = Task.Run(RunAsync);
    }

    public IPEndPoint Endpoint { get; }

    public Task Run { get; }

    private async Task RunAsync()
    {
        using Socket down = await _listener.AcceptAsync(_cts.Token);
        using var up = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await up.ConnectAsync(_upstream, _cts.Token);
        Task back = Copy(up, down);
        Task forth = Forward(down, up);
        await Task.WhenAny(back, forth);
        down.Close(0);
        up.Close(0);
    }

    private async Task Copy(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int n;
            while ((n = await from.ReceiveAsync(buffer, SocketFlags.None, _cts.Token)) > 0)
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _cts.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private async Task Forward(Socket from, Socket to)
    {
        var header = new byte[FrameHeader.Size];
        try
        {
            while (true)
            {
                if (!await ReadExactly(from, header)) return;
                var type = (FrameType)BinaryPrimitives.ReadUInt32LittleEndian(header);
                byte[] body = new byte[(long)BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(8))];
                if (!await ReadExactly(from, body)) return;
                if (!_onFrame(type, body)) return; // cut: the receiver never sees this frame
                await to.SendAsync(header, SocketFlags.None, _cts.Token);
                await to.SendAsync(body, SocketFlags.None, _cts.Token);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private async Task<bool> ReadExactly(Socket from, byte[] into)
    {
        int got = 0;
        while (got < into.Length)
        {
            int n = await from.ReceiveAsync(into.AsMemory(got), SocketFlags.None, _cts.Token);
            if (n == 0) return false;
            got += n;
        }
        return true;
    }

    public void Dispose()
    {
        _cts.Cancel();
        _listener.Dispose();
    }
}
