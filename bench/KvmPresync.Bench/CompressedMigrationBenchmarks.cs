using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Memory;
using KvmPresync.Migration;
using KvmPresync.Migration.Compression;
using KvmPresync.Wire;

namespace KvmPresync.Bench;

/// <summary>
/// A whole migration of a guest whose memory holds real pages — 32 MiB tiled from one corpus of <c>make page-corpus</c>, each
/// 256-page stretch a seeded shuffle of the corpus — over loopback with the sender paced at 1 Gbit/s (the in-process token
/// bucket; <see cref="Link"/> = none: unpaced), to a receiver in the same process: classic pre-copy launched at once (everything is sent, then the pause, the
/// digest, the state, the resume). One operation = one migration; <c>--compression off</c> (the baseline) against
/// <c>auto</c>, side by side per corpus. The sender's and receiver's CPU work (compress, decompress) share this host's
/// cores, as on a loopback run.
/// </summary>
[MemoryDiagnoser]
public class CompressedMigrationBenchmarks
{
    private const int PageSize = CompressionBenchmarks.PageSize;
    private const int Pages = 8192; // 32 MiB
    private readonly PreSharedKey _key = new(Enumerable.Repeat((byte)9, 32).ToArray());
    private GuestMemoryMap _memory = null!;

    [ParamsSource(nameof(Corpora))]
    public string Corpus { get; set; } = "";

    public static IEnumerable<string> Corpora() => CompressionBenchmarks.Corpora();

    /// <summary>The sender's in-process link limit: "1gbit", or "none" (loopback as fast as the cores move it: the CPU-bound case).</summary>
    [Params("1gbit", "none")]
    public string Link { get; set; } = "1gbit";

    [GlobalSetup]
    public void Setup()
    {
        byte[] corpus = CompressionBenchmarks.Load(Corpus);
        int n = corpus.Length / PageSize;
        _memory = GuestMemoryMap.Single(GuestMemory.Create((long)Pages * PageSize), ownsMemory: true);
        var random = new Random(3);
        int[] order = Enumerable.Range(0, n).ToArray();
        for (int at = 0; at < Pages; at += n)
        {
            random.Shuffle(order);
            for (int i = 0; i < n && at + i < Pages; i++)
                corpus.AsSpan(order[i] * PageSize, PageSize).CopyTo(_memory.Page(at + i));
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _memory.Dispose();

    [Benchmark(Baseline = true)]
    public Task<MigrationResult> Off() => MigrateAsync(CompressionMode.Off);

    [Benchmark]
    public Task<MigrationResult> Auto() => MigrateAsync(CompressionMode.Auto);

    private async Task<MigrationResult> MigrateAsync(CompressionMode mode)
    {
        using Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        Task<ReceiveResult> receiver = Task.Run(async () =>
        {
            using Socket connection = await listener.AcceptAsync();
            return await PresyncReceiver.RunAsync(connection, _key, layout => new BlankTarget(layout));
        });
        using Socket socket = await MigrationSocket.ConnectAsync((IPEndPoint)listener.LocalEndPoint!, CancellationToken.None);
        var source = new StaticSource(_memory);
        var sender = new PresyncSender(source, socket, _key, new PresyncOptions
        {
            Engine = new SyncEngineOptions { Policy = SyncPolicy.None, LinkBitsPerSecond = 1e9 },
            RateLimitBitsPerSecond = Link == "none" ? 0 : 1e9,
            SyncBeforeLaunch = false,
            Compression = mode,
        });
        sender.Launch();
        MigrationResult result = await sender.RunAsync();
        ReceiveResult received = await receiver;
        if (!result.Succeeded || !received.Resumed) throw new InvalidOperationException($"migration failed: {result.Failure} / {received.Failure}");
        return result;
    }

    /// <summary>A guest that does not run: nothing is dirtied after the first harvest.</summary>
    private sealed class StaticSource(GuestMemoryMap memory) : IMigrationSource, IDirtyPageSource
    {
        public GuestMemoryMap Memory => memory;
        public IDirtyPageSource DirtyLog => this;
        public long ProgressTotal => 0;
        public long PageCount => memory.PageCount;
        public int PageSize => memory.PageSize;
        public DirtyHarvest Harvest(DirtyBitmap into) => new(TimeSpan.Zero, 0);
        public void Pause() { }
        public void Resume() { }
        public byte[] SaveState() => [1];
        public void Stop() { }
    }

    private sealed class BlankTarget(MemoryLayout layout) : IMigrationTarget
    {
        public GuestMemoryMap Memory { get; } = GuestMemoryMap.Single(GuestMemory.Create((long)layout.TotalBytes), ownsMemory: true);
        public void Resume(ReadOnlySpan<byte> deviceState) { }
        public void Dispose() => Memory.Dispose();
    }
}
