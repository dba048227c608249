using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// A TCP proxy on 127.0.0.1 that forwards sender ⇄ receiver unchanged, except for one byte: in the first PageBatch that
/// carries guest page frame <c>pageNumber</c> as a Full page, one byte of that page's payload is flipped — a page
/// corrupted in flight, after the sender hashed it (the descriptor's hash is left as the sender wrote it).
/// </summary>
internal sealed class CorruptingProxy : IDisposable
{
    private const int HeaderSize = 16, DescriptorSize = 24, BatchPrefix = 16;
    private readonly Socket _listener;
    private readonly IPEndPoint _upstream;
    private readonly ulong _pageNumber;
    private readonly int _pageSize;
    private readonly CancellationTokenSource _cts = new();

    public CorruptingProxy(IPEndPoint upstream, ulong pageNumber, int pageSize = 4096)
    {
        _upstream = upstream;
        _pageNumber = pageNumber;
        _pageSize = pageSize;
        _listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        Endpoint = (IPEndPoint)_listener.LocalEndPoint!;
        Run = Task.Run(RunAsync);
    }

    public IPEndPoint Endpoint { get; }

    public Task Run { get; }

    /// <summary>True once the byte was flipped.</summary>
    public bool Corrupted { get; private set; }

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

    /// <summary>Sender → receiver, frame by frame; PageBatch bodies are read whole so one payload byte can be flipped.</summary>
    private async Task Forward(Socket from, Socket to)
    {
        var header = new byte[HeaderSize];
        try
        {
            while (true)
            {
                if (!await ReadExactly(from, header)) return;
                long length = (long)BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(8));
                var type = (FrameType)BinaryPrimitives.ReadUInt32LittleEndian(header);
                byte[] body = new byte[length];
                if (!await ReadExactly(from, body)) return;
                if (type == FrameType.PageBatch && !Corrupted) TryCorrupt(body);
                await to.SendAsync(header, SocketFlags.None, _cts.Token);
                await to.SendAsync(body, SocketFlags.None, _cts.Token);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private void TryCorrupt(byte[] body)
    {
        int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(8));
        int payloads = 0;
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> d = body.AsSpan(BatchPrefix + i * DescriptorSize, DescriptorSize);
            ulong page = BinaryPrimitives.ReadUInt64LittleEndian(d);
            var kind = (PageKind)BinaryPrimitives.ReadUInt32LittleEndian(d[8..]);
            if (kind != PageKind.Full) continue;
            if (page == _pageNumber)
            {
                body[BatchPrefix + count * DescriptorSize + payloads * _pageSize + 100] ^= 0x01;
                Corrupted = true;
                return;
            }
            payloads++;
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
