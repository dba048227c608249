using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace KvmPresync.Memory;

public static partial class PageHasher
{
    /// <summary>
    /// 16-byte vectors: a block is four vectors. The 32 lanes would be sixteen accumulators, more than SSE has
    /// registers for, so this path walks one lane group at a time (blocks g, g+4, g+8, …) — each lane still
    /// sees the same block sequence as in the other paths, so the result is identical.
    /// </summary>
    // Not inlined: inlined into a caller it exhausts the JIT's budget and the round helpers stop inlining (2.5× slower).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ulong HashVector128(ReadOnlySpan<byte> data, out bool isZero)
    {
        Vector128<ulong> any = Vector128<ulong>.Zero;
        Vector128<ulong> mixed = Vector128<ulong>.Zero;
        for (int g = 0; g < GroupCount; g++)
            mixed += HashGroup128(data, g, ref any);
        isZero = any == Vector128<ulong>.Zero;
        return Finish(Vector128.Sum(mixed), (nuint)data.Length);
    }

    /// <summary>Runs lane group <paramref name="group"/> over its blocks; returns its lanes' mixed sum (two lanes per half).</summary>
    private static Vector128<ulong> HashGroup128(ReadOnlySpan<byte> data, int group, ref Vector128<ulong> any)
    {
        ref byte start = ref MemoryMarshal.GetReference(data);
        nuint length = (nuint)data.Length;
        ref ulong keys = ref Unsafe.Add(ref MemoryMarshal.GetReference(Keys), 8 * group);
        Vector128<ulong> key0 = Vector128.LoadUnsafe(ref keys, 0), key1 = Vector128.LoadUnsafe(ref keys, 2);
        Vector128<ulong> key2 = Vector128.LoadUnsafe(ref keys, 4), key3 = Vector128.LoadUnsafe(ref keys, 6);
        ref ulong steps = ref MemoryMarshal.GetReference(Steps);
        Vector128<ulong> step0 = Vector128.LoadUnsafe(ref steps, 0), step1 = Vector128.LoadUnsafe(ref steps, 2);
        Vector128<ulong> step2 = Vector128.LoadUnsafe(ref steps, 4), step3 = Vector128.LoadUnsafe(ref steps, 6);
        Vector128<ulong> pos0 = Vector128<ulong>.Zero, pos1 = pos0, pos2 = pos0, pos3 = pos0;
        Vector128<ulong> acc0 = Vector128<ulong>.Zero, acc1 = acc0, acc2 = acc0, acc3 = acc0;
        Vector128<ulong> seen = any;

        for (nuint offset = (nuint)(group * BlockSize); offset < length; offset += GroupCount * BlockSize)
        {
            // Safe: offset < length and both are multiples of 64, so offset + 64 <= length.
            Vector128<ulong> d0 = Vector128.LoadUnsafe(ref start, offset).AsUInt64();
            Vector128<ulong> d1 = Vector128.LoadUnsafe(ref start, offset + 16).AsUInt64();
            Vector128<ulong> d2 = Vector128.LoadUnsafe(ref start, offset + 32).AsUInt64();
            Vector128<ulong> d3 = Vector128.LoadUnsafe(ref start, offset + 48).AsUInt64();
            seen = seen | d0 | d1;
            seen = seen | d2 | d3;
            acc0 = Round128(acc0, d0 ^ key0 ^ pos0);
            acc1 = Round128(acc1, d1 ^ key1 ^ pos1);
            acc2 = Round128(acc2, d2 ^ key2 ^ pos2);
            acc3 = Round128(acc3, d3 ^ key3 ^ pos3);
            pos0 += step0;
            pos1 += step1;
            pos2 += step2;
            pos3 += step3;
        }
        any = seen;

        ref ulong tweaks = ref Unsafe.Add(ref MemoryMarshal.GetReference(FinalTweaks), 8 * group);
        return Fmix128(acc0 ^ Vector128.LoadUnsafe(ref tweaks, 0))
            + Fmix128(acc1 ^ Vector128.LoadUnsafe(ref tweaks, 2))
            + Fmix128(acc2 ^ Vector128.LoadUnsafe(ref tweaks, 4))
            + Fmix128(acc3 ^ Vector128.LoadUnsafe(ref tweaks, 6));
    }

    /// <summary>acc + lo32(x)·lo32(y) + y with y = each word's neighbour, halves swapped (dword shuffle 3,2,1,0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Round128(Vector128<ulong> acc, Vector128<ulong> x)
    {
        Vector128<uint> y;
        Vector128<ulong> product;
        if (Sse2.IsSupported)
        {
            y = Sse2.Shuffle(x.AsUInt32(), 0b00_01_10_11);
            product = Sse2.Multiply(x.AsUInt32(), y);
        }
        else
        {
            y = Vector128.Shuffle(x.AsUInt32(), Vector128.Create(3u, 2, 1, 0));
            Vector128<ulong> low = Vector128.Create(0xFFFF_FFFFUL);
            product = (x & low) * (y.AsUInt64() & low);
        }
        return acc + product + y.AsUInt64();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Fmix128(Vector128<ulong> a)
    {
        a ^= a >>> 33;
        a *= Vector128.Create(FmixMul1);
        a ^= a >>> 33;
        a *= Vector128.Create(FmixMul2);
        return a ^ (a >>> 33);
    }
}
