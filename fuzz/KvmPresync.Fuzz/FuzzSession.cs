using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Wire;

namespace KvmPresync.Fuzz;

/// <summary>
/// The fixed parameters every target and every seed share (fuzz/README.md): the pre-shared key, the receiver's
/// handshake nonce (injected through the internal seam <c>ReceiverHandshakeOptions.NonceSource</c> /
/// <c>ReceiverOptions.HandshakeNonce</c>, so a recorded sender stream authenticates again when replayed), and the
/// guest layout the seeds announce: two slots of 4 pages (slot 0 at GPA 0, slot 1 at 1 MiB).
/// </summary>
public static class FuzzSession
{
    public const int PageSize = 4096;
    public const int SlotPages = 4;
    public const ulong Slot1Address = 1UL << 20;

    /// <summary>32 bytes: "kvmpresync fuzz key, not secret!".</summary>
    public static byte[] KeyBytes() => "kvmpresync fuzz key, not secret!"u8.ToArray();

    /// <summary>The receiver's nonce in every fuzz run and every seed: 32 bytes of 0x5a.</summary>
    public static byte[] ReceiverNonce() => Enumerable.Repeat((byte)0x5a, WireLimits.NonceBytes).ToArray();

    public static MemoryLayout Layout { get; } = MemoryLayout.Create(PageSize,
        [new LayoutSlot(0, 0, SlotPages * PageSize), new LayoutSlot(1, Slot1Address, SlotPages * PageSize)]);

    /// <summary>A map with <see cref="Layout"/>'s regions over fresh memory (owned by the map).</summary>
    public static GuestMemoryMap CreateMap() => new(
        [new GuestRegion(0, 0, GuestMemory.Create(SlotPages * PageSize)), new GuestRegion(1, Slot1Address, GuestMemory.Create(SlotPages * PageSize))],
        ownsMemory: true);
}

/// <summary>
/// The receiver target's destination: <see cref="FuzzSession.Layout"/> over two 4-page blocks, allocated once per
/// process between canary blocks (before, between and after, filled with 0xCC). <see cref="Reset"/> zeroes the guest
/// and checks nothing else changed; <see cref="CheckCanaries"/> after each run proves the receiver wrote only through
/// the announced map. Dispose does not free the memory: the next run reuses it.
/// </summary>
public sealed class CanaryTarget : IMigrationTarget
{
    public const byte Canary = 0xCC;
    private const int CanaryPages = 2;
    private readonly GuestMemory[] _canaries;

    public CanaryTarget()
    {
        var before = GuestMemory.Create(CanaryPages * FuzzSession.PageSize);
        var slot0 = GuestMemory.Create(FuzzSession.SlotPages * FuzzSession.PageSize);
        var between = GuestMemory.Create(CanaryPages * FuzzSession.PageSize);
        var slot1 = GuestMemory.Create(FuzzSession.SlotPages * FuzzSession.PageSize);
        var after = GuestMemory.Create(CanaryPages * FuzzSession.PageSize);
        _canaries = [before, between, after];
        foreach (GuestMemory c in _canaries) c.Slice(0, (int)c.Size).Fill(Canary);
        Memory = new GuestMemoryMap([new GuestRegion(0, 0, slot0), new GuestRegion(1, FuzzSession.Slot1Address, slot1)]);
    }

    public GuestMemoryMap Memory { get; }
    public int Created { get; set; }
    public int Resumes { get; private set; }
    public int Disposals { get; private set; }

    public void Resume(ReadOnlySpan<byte> deviceState) => Resumes++;
    public void Dispose() => Disposals++;

    public void Reset()
    {
        for (long p = 0; p < Memory.PageCount; p++) Memory.Page(p).Clear();
        Created = Resumes = Disposals = 0;
    }

    /// <summary>Throws when a canary byte changed (a write outside the announced layout).</summary>
    public void CheckCanaries()
    {
        for (int i = 0; i < _canaries.Length; i++)
        {
            Span<byte> c = _canaries[i].Slice(0, (int)_canaries[i].Size);
            int bad = c.IndexOfAnyExcept(Canary);
            if (bad >= 0) throw new FuzzFinding($"canary block {i} changed at byte {bad}: the receiver wrote outside the announced layout");
        }
    }
}

/// <summary>A harness check failed: reported to the fuzzer as a crash.</summary>
public sealed class FuzzFinding(string message) : Exception(message);

/// <summary>Answers go nowhere (the fuzzed peer does not read them).</summary>
public sealed class DiscardWriter : IGatherWriter
{
    public ValueTask WriteAsync(IReadOnlyList<ReadOnlyMemory<byte>> segments, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
