using System.Net;
using System.Net.Sockets;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Wire;

/// <summary>Shared helpers for the wire tests: layouts, raw frame bytes, loopback socket pairs, a manual clock.</summary>
internal static class WireTestSupport
{
    public const int PageSize = 4096;

    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>64 pages at GPA 0 (slot 0) and 16 pages at 1 MiB (slot 1): pages 0..63 and 256..271.</summary>
    public static MemoryLayout TwoSlotLayout() =>
        MemoryLayout.Create(PageSize, [new LayoutSlot(0, 0, 64 * PageSize), new LayoutSlot(1, 0x100000, 16 * PageSize)]);

    /// <summary>Encodes a frame: header (with an optional lying length or flags) followed by the body bytes.</summary>
    public static byte[] Frame(FrameType type, ReadOnlySpan<byte> body, uint flags = 0, ulong? declaredLength = null)
    {
        byte[] bytes = new byte[FrameHeader.Size + body.Length];
        new FrameHeader(type, flags, declaredLength ?? (ulong)body.Length).Write(bytes);
        body.CopyTo(bytes.AsSpan(FrameHeader.Size));
        return bytes;
    }

    public static byte[] Encode<T>(T body) where T : IFrameBody<T>
    {
        byte[] bytes = new byte[body.BodyLength];
        body.Write(bytes);
        return bytes;
    }

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    /// <summary>A reader over the given bytes, bound to <paramref name="layout"/> when one is given.</summary>
    public static FrameReader ReaderOver(byte[] bytes, MemoryLayout? layout = null, HelloOptions options = HelloOptions.All)
    {
        var reader = new FrameReader(new MemoryStream(bytes, writable: false));
        if (layout is not null) reader.UseSession(layout, options);
        return reader;
    }

    public static async Task<ProtocolException> ReadFails(FrameReader reader, Func<FrameReader, FrameHeader, Task> body)
    {
        return await Assert.ThrowsAnyAsync<ProtocolException>(async () =>
        {
            FrameHeader header = await reader.ReadHeaderAsync(Ct);
            await body(reader, header);
        });
    }

    /// <summary>A connected TCP pair on loopback, both configured as migration sockets.</summary>
    public static async Task<(Socket Client, Socket Server)> LoopbackPairAsync()
    {
        using Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        Task<Socket> accept = MigrationSocket.AcceptAsync(listener, Ct);
        Socket client = await MigrationSocket.ConnectAsync(listener.LocalEndPoint!, Ct);
        return (client, await accept);
    }

    public static byte[] RandomKey(int length = 32)
    {
        byte[] key = new byte[length];
        Random.Shared.NextBytes(key);
        return key;
    }

    public static byte[] PatternPage(int seed)
    {
        byte[] page = new byte[PageSize];
        for (int i = 0; i < page.Length; i++) page[i] = (byte)(seed * 31 + i * 7);
        return page;
    }
}

/// <summary>A clock that only moves when told to (nanosecond timestamps).</summary>
internal sealed class ManualClock : TimeProvider
{
    public long Now { get; set; } = 1_000_000_000;

    public override long TimestampFrequency => 1_000_000_000;

    public override long GetTimestamp() => Now;

    public void Advance(TimeSpan by) => Now += (long)(by.Ticks * 100); // 1 tick = 100 ns

    public double Seconds => Now / 1e9;
}
