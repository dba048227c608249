using KvmPresync.Core;
using KvmPresync.Memory;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// A small guest without KVM for migration tests: memory filled with seeded content, and a dirty log that, at each
/// harvest, rewrites a few seeded pages first and reports exactly those (so the digest really checks that every write
/// moved). Pause stops the writes; Launch is requested by the test or after <see cref="LaunchAfterHarvests"/>.
/// </summary>
internal sealed class ScriptedGuest : IMigrationSource, IDirtyPageSource, IDisposable
{
    private readonly Random _random;
    private readonly int _writesPerHarvest;
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private int _harvests;

    public ScriptedGuest(long pages, int writesPerHarvest = 8, int seed = 1)
    {
        _random = new Random(seed);
        _writesPerHarvest = writesPerHarvest;
        Memory = GuestMemoryMap.Single(GuestMemory.Create(pages * GuestMemory.HostPageSize), ownsMemory: true);
        for (long p = 0; p < pages; p += 3) Write(p); // two in three pages hold data, the rest stay zero
    }

    /// <summary>Called at the harvest with this number (0-based) when set; e.g. to request the launch.</summary>
    public int? LaunchAfterHarvests { get; init; }

    public Action? Launch { get; set; }

    public GuestMemoryMap Memory { get; }
    public IDirtyPageSource DirtyLog => this;
    public long ProgressTotal => _harvests;
    public long PageCount => Memory.PageCount;
    public int PageSize => Memory.PageSize;
    public bool Paused { get; private set; }
    public bool Stopped { get; private set; }
    public int Harvests => Volatile.Read(ref _harvests);

    public DirtyHarvest Harvest(DirtyBitmap into)
    {
        int k = Interlocked.Increment(ref _harvests) - 1;
        long count = 0;
        if (!Paused)
        {
            for (int i = 0; i < _writesPerHarvest; i++)
            {
                long page = _random.NextInt64(Memory.PageCount);
                Write(page);
                if (!into[page]) count++;
                into.Set(page);
            }
        }
        if (LaunchAfterHarvests == k) Launch?.Invoke();
        return new DirtyHarvest(_clock.Elapsed, count);
    }

    public void Pause() => Paused = true;
    public void Resume() => Paused = false;
    public byte[] SaveState() => [0x4B, 0x50];
    public void Stop() => Stopped = true;

    private void Write(long page) => _random.NextBytes(Memory.Page(page));

    public void Dispose() => Memory.Dispose();
}
