using System.Net;
using System.Net.Sockets;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Memory;
using KvmPresync.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// Regression (issue 11): <c>repro --workloads trace:movie.kpt</c> with 256 MiB replay guests (a 64 MiB trace, the rest
/// untouched and zero) sent 768 B in 15 s of predict+slowstart sync. The live engine priced every page as a full page;
/// the predictor ranks never-written pages (the zero ones) first into the window, the encoder skips them (the receiver
/// holds zeros already), so each round's window was spent on pages that cost nothing and the data waited for launch.
/// </summary>
[Collection(nameof(KvmPresync.Tests.ZeroCopy.ProcessAllocationCollection))]
public sealed class ZeroPageWindowTests
{
    private const long ZeroPages = 32768, DataPages = 2048; // 128 MiB never written, 8 MiB of data above it

    /// <summary>Data pages written before the sync (reported by the first harvest), a few rewritten at every harvest.</summary>
    private sealed class MostlyZeroGuest : IMigrationSource, IDirtyPageSource, IDisposable
    {
        private readonly Random _random = new(3);
        private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        private int _harvests;

        public MostlyZeroGuest()
        {
            Memory = GuestMemoryMap.Single(GuestMemory.Create((ZeroPages + DataPages) * GuestMemory.HostPageSize), ownsMemory: true);
            for (long p = ZeroPages; p < ZeroPages + DataPages; p++) _random.NextBytes(Memory.Page(p));
        }

        public PresyncSender? Sender { get; set; }
        public int LaunchAfterHarvest { get; init; }
        public GuestMemoryMap Memory { get; }
        public IDirtyPageSource DirtyLog => this;
        public long ProgressTotal => _harvests;
        public long PageCount => Memory.PageCount;
        public int PageSize => Memory.PageSize;
        public bool Paused { get; private set; }

        public DirtyHarvest Harvest(DirtyBitmap into)
        {
            int k = _harvests++;
            long count = 0;
            if (k == 0)
            {
                for (long p = ZeroPages; p < ZeroPages + DataPages; p++) into.Set(p);
                count = DataPages;
            }
            else if (!Paused)
            {
                for (int i = 0; i < 16; i++)
                {
                    long page = ZeroPages + _random.NextInt64(DataPages);
                    _random.NextBytes(Memory.Page(page));
                    if (!into[page]) count++;
                    into.Set(page);
                }
            }
            if (k == LaunchAfterHarvest) Sender!.Launch();
            return new DirtyHarvest(_clock.Elapsed, count);
        }

        public void Pause() => Paused = true;
        public void Resume() => Paused = false;
        public byte[] SaveState() => [1];
        public void Stop() { }
        public void Dispose() => Memory.Dispose();
    }

    [Fact]
    public async Task Predict_slowstart_sends_the_data_before_launch_when_most_of_memory_is_zero()
    {
        using var guest = new MostlyZeroGuest { LaunchAfterHarvest = 4 }; // 5 sync rounds, windows of 1–8 MiB
        (MigrationResult result, ReceiveResult received) = await MigrationHarness.SendToBlankReceiverAsync((socket, key) =>
            guest.Sender = new PresyncSender(guest, socket, key, new PresyncOptions
            {
                Engine = new SyncEngineOptions { Policy = SyncPolicy.PredictSlowStart, LinkBitsPerSecond = 100e6 }, // budget 1.25 MB, 305 pages
                RateLimitBitsPerSecond = 0,
                ProbeWorkingSet = false, // the launch comes at the 5th harvest: one harvest per sync round, as the windows above count
            }));

        Assert.True(result.Succeeded, result.Failure);
        Assert.True(received.Verified, received.Failure);
        Assert.Equal(5, result.Rounds.Count(r => r.Phase == RoundPhase.Sync));
        // before the fix: the window went to zero pages, skipped as unchanged — a few hundred bytes of frames in all
        long data = DataPages * GuestMemory.HostPageSize, budget = LaunchBudget.ForTarget(100e6, LaunchBudget.DefaultTarget).Bytes;
        Assert.True(result.SyncBytes >= (data - budget) / 2, $"sync sent {result.SyncBytes} B of {data} B of data before launch");
        Assert.NotNull(result.InitialCopyBytes); // the first pass over memory completed
        Assert.True(result.Rounds.Where(r => r.Phase == RoundPhase.Sync).Sum(r => r.SkippedUnchangedPages) >= ZeroPages,
            "every zero page was dealt with by the sync rounds");
    }
}
