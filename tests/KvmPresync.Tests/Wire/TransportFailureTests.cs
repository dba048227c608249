using System.Net.Sockets;
using KvmPresync.Wire;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Wire;

/// <summary>How the end of a real connection is reported: clean close, close mid-frame, transport error.</summary>
public sealed class TransportFailureTests
{
    [Fact]
    public async Task Socket_shutdown_between_frames_is_peer_closed()
    {
        (Socket client, Socket server) = await LoopbackPairAsync();
        using (client)
        using (server)
        {
            var writer = new FrameWriter(client);
            await writer.WriteAsync(new Ping(1), Ct);
            client.Shutdown(SocketShutdown.Send);
            var reader = new FrameReader(new NetworkStream(server));
            Assert.Equal(new Ping(1), await reader.ReadExpectedAsync<Ping>(Ct));
            var e = await Assert.ThrowsAsync<ProtocolException>(async () => await reader.ReadHeaderAsync(Ct));
            Assert.Equal(ProtocolError.PeerClosed, e.Error);
        }
    }

    [Fact]
    public async Task Socket_shutdown_mid_header_is_truncated_never_a_clean_end()
    {
        (Socket client, Socket server) = await LoopbackPairAsync();
        using (client)
        using (server)
        {
            await client.SendAsync(Frame(FrameType.Ping, new byte[8]).AsMemory(0, 3), SocketFlags.None, Ct);
            client.Shutdown(SocketShutdown.Send);
            var e = await Assert.ThrowsAsync<ProtocolException>(async () => await new FrameReader(new NetworkStream(server)).ReadHeaderAsync(Ct));
            Assert.Equal(ProtocolError.Truncated, e.Error);
            Assert.Equal("connection closed after 3 of 16 header bytes", e.Message);
        }
    }

    private sealed class BrokenStream : MemoryStream
    {
        public override int Read(Span<byte> buffer) => throw new IOException("Connection reset by peer");
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromException<int>(new IOException("Connection reset by peer"));
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromException(new IOException("Broken pipe"));
    }

    [Fact]
    public async Task Transport_errors_become_connection_failed_with_the_cause_inside()
    {
        var read = await Assert.ThrowsAsync<ProtocolException>(async () => await new FrameReader(new BrokenStream()).ReadHeaderAsync(Ct));
        Assert.Equal(ProtocolError.ConnectionFailed, read.Error);
        Assert.IsType<IOException>(read.InnerException);
        Assert.True(read.IsRetryable);

        var write = await Assert.ThrowsAsync<ProtocolException>(async () => await new FrameWriter(new BrokenStream()).WriteAsync(new Ping(1), Ct));
        Assert.Equal(ProtocolError.ConnectionFailed, write.Error);
        Assert.Contains("Broken pipe", write.Message);
    }
}
