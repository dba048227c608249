using System.IO.Hashing;
using BenchmarkDotNet.Attributes;
using KvmPresync.Memory;

namespace KvmPresync.Bench;

/// <summary>
/// One 4 KiB page, cache-warm: our page hash on each path against XxHash3 (baseline) and XxHash128.
/// Ours also answers "is this page all zeros" in the same pass, so XxHash3 is also measured with the
/// zero check it would need (IndexOfAnyExcept) to be a drop-in replacement.
/// </summary>
[MemoryDiagnoser, MedianColumn]
public class HashBenchmarks
{
    private byte[] _page = [];

    [Params(4096)]
    public int PageSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _page = new byte[PageSize];
        new Random(1).NextBytes(_page);
    }

    [Benchmark(Baseline = true)]
    public ulong XxHash3_64() => XxHash3.HashToUInt64(_page);

    [Benchmark]
    public ulong XxHash3_64_PlusZeroCheck()
    {
        ulong h = XxHash3.HashToUInt64(_page);
        return _page.AsSpan().IndexOfAnyExcept((byte)0) < 0 ? h ^ 1 : h;
    }

    [Benchmark]
    public UInt128 XxHash128_() => XxHash128.HashToUInt128(_page);

    [Benchmark]
    public ulong Ours_Best() => Zeroed(PageHasher.Hash(_page, out bool zero), zero);

    [Benchmark]
    public ulong Ours_Vector512() => Ours(HashPath.Vector512);

    [Benchmark]
    public ulong Ours_Vector256() => Ours(HashPath.Vector256);

    [Benchmark]
    public ulong Ours_Vector128() => Ours(HashPath.Vector128);

    [Benchmark]
    public ulong Ours_Scalar() => Ours(HashPath.Scalar);

    private ulong Ours(HashPath path) => Zeroed(PageHasher.Hash(_page, out bool zero, path), zero);

    private static ulong Zeroed(ulong hash, bool zero) => zero ? hash ^ 1 : hash;
}
