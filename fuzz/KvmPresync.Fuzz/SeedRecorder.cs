using System.Net;
using System.Net.Sockets;
using KvmPresync.Core;
using KvmPresync.Memory;
using KvmPresync.Migration;
using KvmPresync.Migration.Compression;
using KvmPresync.Wire;

namespace KvmPresync.Fuzz;

/// <summary>
/// Records what a real <see cref="PresyncSender"/> sends, for the seed corpus (<c>KvmPresync.Fuzz record DIR</c>).
/// The sender migrates a <see cref="ScriptedSource"/> (the 8-page <see cref="FuzzSession.Layout"/>, a few pages
/// written, a scripted dirty log) over loopback TCP to a real <see cref="PresyncReceiver"/> that has the fixed nonce;
/// the receiver reads through a <see cref="RecordingStream"/>, so the file holds exactly the bytes the sender sent —
/// a stream that replays into the fuzz receiver, authentication and digest included.
/// </summary>
public static class SeedRecorder
{
    public static async Task<int> RunAsync(string directory)
    {
        Directory.CreateDirectory(Path.Combine(directory, "receiver"));
        Directory.CreateDirectory(Path.Combine(directory, "handshake"));
        Directory.CreateDirectory(Path.Combine(directory, "frames"));
        var recordings = new List<(string Name, byte[] Bytes)>();
        // one Full page, launched at the first harvest; three Full pages and a rewrite over three rounds; a page zeroed later
        // and (protocol 1.3) the three rounds with every batch compressed, once per codec
        foreach ((string name, int[][] script, int launchAfter, CompressionMode compression) in new[]
        {
            ("one-page", new[] { new[] { 1 } }, 0, CompressionMode.Off),
            ("three-rounds", new[] { new[] { 0, 5 }, new[] { 5 }, new[] { 2, 7 } }, 1, CompressionMode.Off),
            ("three-rounds-lz4", new[] { new[] { 0, 5 }, new[] { 5 }, new[] { 2, 7 } }, 1, CompressionMode.Lz4),
            ("three-rounds-zstd", new[] { new[] { 0, 5 }, new[] { 5 }, new[] { 2, 7 } }, 1, CompressionMode.Zstd),
            ("zeroed-page", new[] { new[] { 3, 6 }, new[] { -3 } }, 0, CompressionMode.Off),
        })
        {
            (byte[] bytes, ReceiveResult received, MigrationResult sent) = await RecordAsync(script, launchAfter, compression);
            if (!sent.Succeeded || !received.Resumed)
            {
                Console.Error.WriteLine($"record {name}: the migration failed (sender: {sent.Failure}; receiver: {received.Failure})");
                return 1;
            }
            recordings.Add((name, bytes));
        }

        foreach ((string name, byte[] bytes) in recordings)
        {
            File.WriteAllBytes(Path.Combine(directory, "receiver", name + ".bin"), bytes);
            List<(FrameType Type, int Offset, int Length)> frames = Split(bytes);
            Console.WriteLine($"{name}: {bytes.Length} bytes, frames {string.Join(" ", frames.Select(f => f.Type))}");
            if (name.StartsWith("three-rounds-", StringComparison.Ordinal))
            {
                // frames: the first compressed PageBatch (codec field ≠ 0)
                (FrameType _, int offset, int length) = frames.First(f => f.Type == FrameType.PageBatch && bytes[f.Offset + FrameHeader.Size + 12] != 0);
                File.WriteAllBytes(Path.Combine(directory, "frames", "pagebatch-" + name["three-rounds-".Length..] + ".bin"), bytes.AsSpan(offset, length).ToArray());
            }
            if (name != "one-page") continue;
            // handshake: the Hello alone, Hello + AuthProof, and the authenticated prefix + the first memory frame
            int afterHello = frames[0].Offset + frames[0].Length, afterProof = frames[1].Offset + frames[1].Length;
            File.WriteAllBytes(Path.Combine(directory, "handshake", "hello.bin"), bytes[..afterHello]);
            File.WriteAllBytes(Path.Combine(directory, "handshake", "hello-authproof.bin"), bytes[..afterProof]);
            File.WriteAllBytes(Path.Combine(directory, "handshake", "authenticated-first-batch.bin"), bytes[..(frames[2].Offset + frames[2].Length)]);
            // frames: each frame type the sender sent, one file per frame (the reader is bound to the seeds' layout)
            foreach (IGrouping<FrameType, (FrameType Type, int Offset, int Length)> g in frames.GroupBy(f => f.Type))
                File.WriteAllBytes(Path.Combine(directory, "frames", g.Key.ToString().ToLowerInvariant() + ".bin"),
                    bytes.AsSpan(g.First().Offset, g.First().Length).ToArray());
            File.WriteAllBytes(Path.Combine(directory, "frames", "stream.bin"), bytes[afterProof..]);
        }
        // frames the sender never sends but the reader decodes: the receiver's answers and an Abort
        var extra = new MemoryStream();
        var w = new FrameWriter(extra);
        await w.WriteAsync(new Abort(AbortReason.ProtocolViolation, "fuzz seed: an Abort with a message"));
        await w.WriteAsync(new Ack(1, 4096, 1, 2, 3));
        await w.WriteAsync(new Resumed(1, 2));
        await w.WriteAsync(new Pong(7));
        File.WriteAllBytes(Path.Combine(directory, "frames", "receiver-answers.bin"), extra.ToArray());
        return 0;
    }

    /// <summary>Frame boundaries of a well-formed stream (header + body, payloads included).</summary>
    public static List<(FrameType Type, int Offset, int Length)> Split(byte[] stream)
    {
        var frames = new List<(FrameType, int, int)>();
        for (int at = 0; at + FrameHeader.Size <= stream.Length;)
        {
            FrameHeader.TryRead(stream.AsSpan(at), out FrameHeader h);
            int length = FrameHeader.Size + checked((int)h.BodyLength);
            frames.Add((h.Type, at, length));
            at += length;
        }
        return frames;
    }

    private static async Task<(byte[], ReceiveResult, MigrationResult)> RecordAsync(int[][] script, int launchAfter, CompressionMode compression)
    {
        using var key = new PreSharedKey(FuzzSession.KeyBytes());
        using Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        var recorded = new MemoryStream();
        Task<ReceiveResult> receive = Task.Run(async () =>
        {
            using Socket conn = await MigrationSocket.AcceptAsync(listener);
            var input = new RecordingStream(new NetworkStream(conn, ownsSocket: false), recorded);
            try
            {
                return await PresyncReceiver.RunAsync(input, new SocketGatherWriter(conn), key, layout => new BlankTarget(),
                    new ReceiverOptions { HandshakeNonce = FuzzSession.ReceiverNonce });
            }
            finally
            {
                conn.Shutdown(SocketShutdown.Both);
            }
        });
        using var source = new ScriptedSource(script, launchAfter);
        using Socket socket = await MigrationSocket.ConnectAsync(listener.LocalEndPoint!);
        var sender = new PresyncSender(source, socket, key, new PresyncOptions { RateLimitBitsPerSecond = 0, Compression = compression });
        source.Sender = sender;
        MigrationResult sent = await sender.RunAsync();
        ReceiveResult received = await receive;
        return (recorded.ToArray(), received, sent);
    }

    private sealed class BlankTarget : IMigrationTarget
    {
        public GuestMemoryMap Memory { get; } = FuzzSession.CreateMap();
        public void Resume(ReadOnlySpan<byte> deviceState) { }
        public void Dispose() => Memory.Dispose();
    }

    /// <summary>
    /// Eight pages (<see cref="FuzzSession.Layout"/>); harvest k writes the pages of script[k] (a negative entry
    /// zeroes page -entry) and reports them dirty; launch is requested at harvest <c>launchAfter</c>.
    /// </summary>
    private sealed class ScriptedSource(int[][] script, int launchAfter) : IMigrationSource, IDirtyPageSource, IDisposable
    {
        private int _harvests;
        public PresyncSender? Sender { get; set; }
        public GuestMemoryMap Memory { get; } = FuzzSession.CreateMap();
        public IDirtyPageSource DirtyLog => this;
        public long ProgressTotal => 0;
        public long PageCount => Memory.PageCount;
        public int PageSize => Memory.PageSize;

        public DirtyHarvest Harvest(DirtyBitmap into)
        {
            int k = _harvests++;
            long dirty = 0;
            if (k < script.Length)
                foreach (int entry in script[k])
                {
                    int page = Math.Abs(entry);
                    Span<byte> bytes = Memory.Page(page);
                    if (entry < 0) bytes.Clear();
                    else bytes.Fill((byte)(0x10 * (k + 1) + page));
                    into.Set(page);
                    dirty++;
                }
            if (k == launchAfter) Sender!.Launch();
            return new DirtyHarvest(TimeSpan.FromMilliseconds(100 * (k + 1)), dirty);
        }

        public void Pause() { }
        public void Resume() { }
        public byte[] SaveState() => "fuzz-seed device state"u8.ToArray();
        public void Stop() { }
        public void Dispose() => Memory.Dispose();
    }
}

/// <summary>Reads through to <c>inner</c> and appends every byte read to <c>copy</c>: what the peer sent, in order.</summary>
public sealed class RecordingStream(Stream inner, Stream copy) : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        lock (copy) copy.Write(buffer[..n]);
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        lock (copy) copy.Write(buffer.Span[..n]);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
}
