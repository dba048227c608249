using System.Buffers.Binary;
using System.Numerics;

namespace KvmPresync.Memory;

public static partial class PageHasher
{
    /// <summary>
    /// The reference definition of the page hash (see docs/HASHING.md). Every vector path must return exactly
    /// what this returns. Block b (64 bytes, words w[0..7] little-endian) updates lane group g = b mod 4:
    /// <code>
    /// x[i]  = w[i] ^ Keys[8g+i] ^ (b div 4)·Steps[i]
    /// y[i]  = rotl(x[i^1], 32)                      // neighbour word, halves swapped
    /// acc[8g+i] += lo32(x[i])·lo32(y[i]) + y[i]     // 32×32→64 multiply; all arithmetic mod 2^64
    /// </code>
    /// Finally h = Σ fmix64(acc[l] ^ FinalTweaks[l]) over the 32 lanes, returned as fmix64(h ^ length·LengthMul).
    /// </summary>
    private static ulong HashScalar(ReadOnlySpan<byte> data, out bool isZero)
    {
        Span<ulong> acc = stackalloc ulong[LaneCount];
        acc.Clear();
        ReadOnlySpan<ulong> keys = Keys;
        ReadOnlySpan<ulong> steps = Steps;
        Span<ulong> x = stackalloc ulong[8];
        ulong any = 0;
        int blocks = data.Length / BlockSize;
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<byte> block = data.Slice(b * BlockSize, BlockSize);
            int g = b % GroupCount;
            ulong j = (ulong)(b / GroupCount);
            for (int i = 0; i < 8; i++)
            {
                ulong w = BinaryPrimitives.ReadUInt64LittleEndian(block.Slice(i * 8, 8));
                any |= w;
                x[i] = w ^ keys[8 * g + i] ^ (j * steps[i]);
            }
            for (int i = 0; i < 8; i++)
            {
                ulong y = BitOperations.RotateLeft(x[i ^ 1], 32);
                acc[8 * g + i] += (x[i] & 0xFFFF_FFFFUL) * (y & 0xFFFF_FFFFUL) + y;
            }
        }
        isZero = any == 0;
        return Finish(SumMixedLanes(acc), (nuint)data.Length);
    }

    /// <summary>Σ fmix64(acc[l] ^ FinalTweaks[l]) — the lane reduction every path performs (order does not matter).</summary>
    private static ulong SumMixedLanes(ReadOnlySpan<ulong> acc)
    {
        ReadOnlySpan<ulong> tweaks = FinalTweaks;
        ulong sum = 0;
        for (int l = 0; l < LaneCount; l++) sum += Fmix64(acc[l] ^ tweaks[l]);
        return sum;
    }
}
