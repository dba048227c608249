using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace KvmPresync.Memory;

public static partial class PageHasher
{
    /// <summary>
    /// 64-byte vectors: one block is one vector, so lane group g is one accumulator and the four groups run
    /// interleaved (four independent dependency chains, 256 bytes per loop iteration).
    /// </summary>
    // Not inlined: inlined into a caller it exhausts the JIT's budget and the round helpers stop inlining (2.5× slower).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ulong HashVector512(ReadOnlySpan<byte> data, out bool isZero)
    {
        ref byte start = ref MemoryMarshal.GetReference(data);
        nuint length = (nuint)data.Length;
        ref ulong keys = ref MemoryMarshal.GetReference(Keys);
        Vector512<ulong> key0 = Vector512.LoadUnsafe(ref keys, 0);
        Vector512<ulong> key1 = Vector512.LoadUnsafe(ref keys, 8);
        Vector512<ulong> key2 = Vector512.LoadUnsafe(ref keys, 16);
        Vector512<ulong> key3 = Vector512.LoadUnsafe(ref keys, 24);
        Vector512<ulong> step = Vector512.Create(Steps);
        Vector512<ulong> position = Vector512<ulong>.Zero;
        Vector512<ulong> acc0 = Vector512<ulong>.Zero, acc1 = acc0, acc2 = acc0, acc3 = acc0;
        Vector512<ulong> any = Vector512<ulong>.Zero;

        nuint offset = 0;
        nuint whole = length & ~(nuint)(GroupCount * BlockSize - 1);
        for (; offset < whole; offset += GroupCount * BlockSize)
        {
            // Safe: offset + 256 <= whole <= length, the span's length.
            Vector512<ulong> d0 = Vector512.LoadUnsafe(ref start, offset).AsUInt64();
            Vector512<ulong> d1 = Vector512.LoadUnsafe(ref start, offset + 64).AsUInt64();
            Vector512<ulong> d2 = Vector512.LoadUnsafe(ref start, offset + 128).AsUInt64();
            Vector512<ulong> d3 = Vector512.LoadUnsafe(ref start, offset + 192).AsUInt64();
            any = any | d0 | d1;
            any = any | d2 | d3;
            acc0 = Round512(acc0, d0 ^ key0 ^ position);
            acc1 = Round512(acc1, d1 ^ key1 ^ position);
            acc2 = Round512(acc2, d2 ^ key2 ^ position);
            acc3 = Round512(acc3, d3 ^ key3 ^ position);
            position += step;
        }
        // The last 1–3 blocks when the length is not a multiple of 256 go to groups 0, 1, 2 in order.
        // Safe: each load is taken only when offset + 64 <= length (length is a multiple of 64).
        if (offset < length)
        {
            Vector512<ulong> d = Vector512.LoadUnsafe(ref start, offset).AsUInt64();
            any |= d;
            acc0 = Round512(acc0, d ^ key0 ^ position);
            offset += BlockSize;
            if (offset < length)
            {
                d = Vector512.LoadUnsafe(ref start, offset).AsUInt64();
                any |= d;
                acc1 = Round512(acc1, d ^ key1 ^ position);
                offset += BlockSize;
                if (offset < length)
                {
                    d = Vector512.LoadUnsafe(ref start, offset).AsUInt64();
                    any |= d;
                    acc2 = Round512(acc2, d ^ key2 ^ position);
                }
            }
        }
        isZero = any == Vector512<ulong>.Zero;

        ref ulong tweaks = ref MemoryMarshal.GetReference(FinalTweaks);
        Vector512<ulong> mixed = Fmix512(acc0 ^ Vector512.LoadUnsafe(ref tweaks, 0))
            + Fmix512(acc1 ^ Vector512.LoadUnsafe(ref tweaks, 8))
            + Fmix512(acc2 ^ Vector512.LoadUnsafe(ref tweaks, 16))
            + Fmix512(acc3 ^ Vector512.LoadUnsafe(ref tweaks, 24));
        return Finish(Vector512.Sum(mixed), length);
    }

    /// <summary>acc + lo32(x)·lo32(y) + y with y = each word's neighbour, halves swapped (dword shuffle 3,2,1,0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> Round512(Vector512<ulong> acc, Vector512<ulong> x)
    {
        Vector512<uint> y;
        Vector512<ulong> product;
        if (Avx512F.IsSupported)
        {
            y = Avx512F.Shuffle(x.AsUInt32(), 0b00_01_10_11);
            product = Avx512F.Multiply(x.AsUInt32(), y);
        }
        else
        {
            y = Vector512.Shuffle(x.AsUInt32(), Vector512.Create(3u, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12));
            Vector512<ulong> low = Vector512.Create(0xFFFF_FFFFUL);
            product = (x & low) * (y.AsUInt64() & low);
        }
        return acc + product + y.AsUInt64();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> Fmix512(Vector512<ulong> a)
    {
        a ^= a >>> 33;
        a *= Vector512.Create(FmixMul1);
        a ^= a >>> 33;
        a *= Vector512.Create(FmixMul2);
        return a ^ (a >>> 33);
    }
}
