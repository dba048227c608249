using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace KvmPresync.Memory;

public static partial class PageHasher
{
    /// <summary>
    /// 32-byte vectors: a block is two vectors (words 0–3 and 4–7), so the 32 lanes are eight accumulators;
    /// the four groups run interleaved, 256 bytes per loop iteration.
    /// </summary>
    // Not inlined: inlined into a caller it exhausts the JIT's budget and the round helpers stop inlining (2.5× slower).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ulong HashVector256(ReadOnlySpan<byte> data, out bool isZero)
    {
        ref byte start = ref MemoryMarshal.GetReference(data);
        nuint length = (nuint)data.Length;
        ref ulong keys = ref MemoryMarshal.GetReference(Keys);
        Vector256<ulong> key0 = Vector256.LoadUnsafe(ref keys, 0), key1 = Vector256.LoadUnsafe(ref keys, 4);
        Vector256<ulong> key2 = Vector256.LoadUnsafe(ref keys, 8), key3 = Vector256.LoadUnsafe(ref keys, 12);
        Vector256<ulong> key4 = Vector256.LoadUnsafe(ref keys, 16), key5 = Vector256.LoadUnsafe(ref keys, 20);
        Vector256<ulong> key6 = Vector256.LoadUnsafe(ref keys, 24), key7 = Vector256.LoadUnsafe(ref keys, 28);
        ref ulong steps = ref MemoryMarshal.GetReference(Steps);
        Vector256<ulong> stepLo = Vector256.LoadUnsafe(ref steps, 0), stepHi = Vector256.LoadUnsafe(ref steps, 4);
        Vector256<ulong> posLo = Vector256<ulong>.Zero, posHi = Vector256<ulong>.Zero;
        Vector256<ulong> acc0 = Vector256<ulong>.Zero, acc1 = acc0, acc2 = acc0, acc3 = acc0;
        Vector256<ulong> acc4 = acc0, acc5 = acc0, acc6 = acc0, acc7 = acc0;
        Vector256<ulong> any = Vector256<ulong>.Zero;

        nuint offset = 0;
        nuint whole = length & ~(nuint)(GroupCount * BlockSize - 1);
        for (; offset < whole; offset += GroupCount * BlockSize)
        {
            // Safe: offset + 256 <= whole <= length, the span's length.
            Vector256<ulong> d0 = Vector256.LoadUnsafe(ref start, offset).AsUInt64();
            Vector256<ulong> d1 = Vector256.LoadUnsafe(ref start, offset + 32).AsUInt64();
            Vector256<ulong> d2 = Vector256.LoadUnsafe(ref start, offset + 64).AsUInt64();
            Vector256<ulong> d3 = Vector256.LoadUnsafe(ref start, offset + 96).AsUInt64();
            Vector256<ulong> d4 = Vector256.LoadUnsafe(ref start, offset + 128).AsUInt64();
            Vector256<ulong> d5 = Vector256.LoadUnsafe(ref start, offset + 160).AsUInt64();
            Vector256<ulong> d6 = Vector256.LoadUnsafe(ref start, offset + 192).AsUInt64();
            Vector256<ulong> d7 = Vector256.LoadUnsafe(ref start, offset + 224).AsUInt64();
            any = any | d0 | d1;
            any = any | d2 | d3;
            any = any | d4 | d5;
            any = any | d6 | d7;
            acc0 = Round256(acc0, d0 ^ key0 ^ posLo);
            acc1 = Round256(acc1, d1 ^ key1 ^ posHi);
            acc2 = Round256(acc2, d2 ^ key2 ^ posLo);
            acc3 = Round256(acc3, d3 ^ key3 ^ posHi);
            acc4 = Round256(acc4, d4 ^ key4 ^ posLo);
            acc5 = Round256(acc5, d5 ^ key5 ^ posHi);
            acc6 = Round256(acc6, d6 ^ key6 ^ posLo);
            acc7 = Round256(acc7, d7 ^ key7 ^ posHi);
            posLo += stepLo;
            posHi += stepHi;
        }
        // The last 1–3 blocks when the length is not a multiple of 256 go to groups 0, 1, 2 in order.
        // Safe: each block is read only when offset + 64 <= length (length is a multiple of 64).
        if (offset < length)
        {
            Vector256<ulong> lo = Vector256.LoadUnsafe(ref start, offset).AsUInt64();
            Vector256<ulong> hi = Vector256.LoadUnsafe(ref start, offset + 32).AsUInt64();
            any = any | lo | hi;
            acc0 = Round256(acc0, lo ^ key0 ^ posLo);
            acc1 = Round256(acc1, hi ^ key1 ^ posHi);
            offset += BlockSize;
            if (offset < length)
            {
                lo = Vector256.LoadUnsafe(ref start, offset).AsUInt64();
                hi = Vector256.LoadUnsafe(ref start, offset + 32).AsUInt64();
                any = any | lo | hi;
                acc2 = Round256(acc2, lo ^ key2 ^ posLo);
                acc3 = Round256(acc3, hi ^ key3 ^ posHi);
                offset += BlockSize;
                if (offset < length)
                {
                    lo = Vector256.LoadUnsafe(ref start, offset).AsUInt64();
                    hi = Vector256.LoadUnsafe(ref start, offset + 32).AsUInt64();
                    any = any | lo | hi;
                    acc4 = Round256(acc4, lo ^ key4 ^ posLo);
                    acc5 = Round256(acc5, hi ^ key5 ^ posHi);
                }
            }
        }
        isZero = any == Vector256<ulong>.Zero;

        ref ulong tweaks = ref MemoryMarshal.GetReference(FinalTweaks);
        Vector256<ulong> mixed = Fmix256(acc0 ^ Vector256.LoadUnsafe(ref tweaks, 0))
            + Fmix256(acc1 ^ Vector256.LoadUnsafe(ref tweaks, 4))
            + Fmix256(acc2 ^ Vector256.LoadUnsafe(ref tweaks, 8))
            + Fmix256(acc3 ^ Vector256.LoadUnsafe(ref tweaks, 12))
            + Fmix256(acc4 ^ Vector256.LoadUnsafe(ref tweaks, 16))
            + Fmix256(acc5 ^ Vector256.LoadUnsafe(ref tweaks, 20))
            + Fmix256(acc6 ^ Vector256.LoadUnsafe(ref tweaks, 24))
            + Fmix256(acc7 ^ Vector256.LoadUnsafe(ref tweaks, 28));
        return Finish(Vector256.Sum(mixed), length);
    }

    /// <summary>acc + lo32(x)·lo32(y) + y with y = each word's neighbour, halves swapped (dword shuffle 3,2,1,0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Round256(Vector256<ulong> acc, Vector256<ulong> x)
    {
        Vector256<uint> y;
        Vector256<ulong> product;
        if (Avx2.IsSupported)
        {
            y = Avx2.Shuffle(x.AsUInt32(), 0b00_01_10_11);
            product = Avx2.Multiply(x.AsUInt32(), y);
        }
        else
        {
            y = Vector256.Shuffle(x.AsUInt32(), Vector256.Create(3u, 2, 1, 0, 7, 6, 5, 4));
            Vector256<ulong> low = Vector256.Create(0xFFFF_FFFFUL);
            product = (x & low) * (y.AsUInt64() & low);
        }
        return acc + product + y.AsUInt64();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Fmix256(Vector256<ulong> a)
    {
        a ^= a >>> 33;
        a *= Vector256.Create(FmixMul1);
        a ^= a >>> 33;
        a *= Vector256.Create(FmixMul2);
        return a ^ (a >>> 33);
    }
}
