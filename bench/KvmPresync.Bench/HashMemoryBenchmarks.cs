using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using KvmPresync.Memory;

namespace KvmPresync.Bench;

/// <summary>
/// All 65,536 pages of a 256 MiB page-aligned buffer — 8× the L3 — so every pass streams from DRAM
/// ("cold"); the buffer is filled once in setup so it is resident. Includes a pure read pass over the same
/// bytes (vector OR-reduction) as the memory-bandwidth bound no hash can beat.
/// </summary>
[MedianColumn]
public unsafe class HashMemoryBenchmarks
{
    private const int PageSize = 4096;
    private const int Size = 256 << 20;
    private const int Pages = Size / PageSize;

    private byte* _memory;
    private readonly ulong[] _hashes = new ulong[Pages];
    private readonly bool[] _zero = new bool[Pages];
    private readonly long[] _scattered = Enumerable.Range(0, Pages).Select(p => (long)p).ToArray();

    // Safe: _memory points to Size bytes allocated in Setup and freed only in Cleanup.
    private ReadOnlySpan<byte> Memory => new(_memory, Size);

    [GlobalSetup]
    public void Setup()
    {
        _memory = (byte*)NativeMemory.AlignedAlloc(Size, PageSize);
        var rng = new Random(1);
        rng.NextBytes(new Span<byte>(_memory, Size)); // touches every page: resident before measuring
        rng.Shuffle(_scattered); // a dirty set in no particular order: the hardware prefetcher cannot follow it
    }

    [GlobalCleanup]
    public void Cleanup() => NativeMemory.AlignedFree(_memory);

    [Benchmark(Baseline = true)]
    public ulong XxHash3_64()
    {
        ReadOnlySpan<byte> memory = Memory;
        for (int p = 0; p < Pages; p++) _hashes[p] = XxHash3.HashToUInt64(memory.Slice(p * PageSize, PageSize));
        return _hashes[^1];
    }

    [Benchmark]
    public ulong XxHash3_64_PlusZeroCheck()
    {
        ReadOnlySpan<byte> memory = Memory;
        for (int p = 0; p < Pages; p++)
        {
            ReadOnlySpan<byte> page = memory.Slice(p * PageSize, PageSize);
            _hashes[p] = XxHash3.HashToUInt64(page);
            _zero[p] = page.IndexOfAnyExcept((byte)0) < 0;
        }
        return _hashes[^1];
    }

    [Benchmark]
    public ulong XxHash128_()
    {
        ReadOnlySpan<byte> memory = Memory;
        for (int p = 0; p < Pages; p++) _hashes[p] = (ulong)XxHash128.HashToUInt128(memory.Slice(p * PageSize, PageSize));
        return _hashes[^1];
    }

    [Benchmark]
    public ulong Ours_Best()
    {
        PageHasher.HashAllPages(Memory, PageSize, _hashes, _zero);
        return _hashes[^1];
    }

    [Benchmark]
    public ulong Ours_Vector512() => Ours(HashPath.Vector512);

    [Benchmark]
    public ulong Ours_Vector256() => Ours(HashPath.Vector256);

    [Benchmark]
    public ulong Ours_Vector128() => Ours(HashPath.Vector128);

    [Benchmark]
    public ulong Ours_Scalar() => Ours(HashPath.Scalar);

    private ulong Ours(HashPath path)
    {
        PageHasher.HashAllPages(Memory, PageSize, _hashes, _zero, path);
        return _hashes[^1];
    }

    [Benchmark]
    public ulong Scattered_XxHash3_64()
    {
        ReadOnlySpan<byte> memory = Memory;
        for (int i = 0; i < Pages; i++) _hashes[i] = XxHash3.HashToUInt64(memory.Slice((int)_scattered[i] * PageSize, PageSize));
        return _hashes[^1];
    }

    [Benchmark]
    public ulong Scattered_Ours_Best()
    {
        PageHasher.HashPages(Memory, PageSize, _scattered, _hashes, _zero);
        return _hashes[^1];
    }

    /// <summary>Reads every byte once and does almost nothing with it: the bandwidth bound.</summary>
    [Benchmark]
    public ulong MemoryBandwidth_OrReduce()
    {
        ref byte start = ref MemoryMarshal.GetReference(Memory);
        Vector256<ulong> a = Vector256<ulong>.Zero, b = a, c = a, d = a;
        // Safe: offset + 128 <= Size on every iteration.
        for (nuint offset = 0; offset < Size; offset += 128)
        {
            a |= Vector256.LoadUnsafe(ref start, offset).AsUInt64();
            b |= Vector256.LoadUnsafe(ref start, offset + 32).AsUInt64();
            c |= Vector256.LoadUnsafe(ref start, offset + 64).AsUInt64();
            d |= Vector256.LoadUnsafe(ref start, offset + 96).AsUInt64();
        }
        return Vector256.Sum(a | b | c | d);
    }
}
