using KvmPresync.Core;
using System.Buffers.Binary;
using KvmPresync.Memory;

namespace KvmPresync.Trace;

/// <summary>
/// Constants and the run-list codec of the dirty-trace format (byte layout: docs/TRACE_FORMAT.md).
/// <code>
/// file   = header interval* end
/// header = "KPDTRACE" u16 version u16 0 u32 headerLength u32 pageSize u32 0 u64 pageCount u64 intervalNs
///          metadata crc32                                  (headerLength covers all of it, ≤ 64 KiB)
/// interval = "IVAL" u32 encoding u64 index u64 timestampNs u64 progress u64 dirtyPages
///          u32 payloadLength u32 decodedLength u32 crc32   payload
/// end    = "TEND" u32 0 u64 intervalCount u64 totalDirtyPages u32 crc32
/// payload (decoded) = (varint gap, varint runLength−1)*   gap = first page of run − end of previous run
/// </code>
/// </summary>
public static class TraceFormat
{
    public static ReadOnlySpan<byte> Magic => "KPDTRACE"u8;

    public const ushort Version = 1;

    /// <summary>"IVAL" read as a little-endian u32.</summary>
    public const uint IntervalTag = 0x4C415649;

    /// <summary>"TEND" read as a little-endian u32.</summary>
    public const uint EndTag = 0x444E4554;

    public const int HeaderFixedBytes = 40;
    public const int IntervalHeaderBytes = 52;
    public const int EndRecordBytes = 28;
    public const int MaxHeaderBytes = 64 * 1024;
    public const int MinPageSize = 512;
    public const int MaxPageSize = 1 << 30;

    /// <summary>Largest page count accepted: 2^36 pages (256 TiB of 4 KiB pages).</summary>
    public const long MaxPageCount = 1L << 36;

    /// <summary>Payload encodings (0 is invalid).</summary>
    public const uint EncodingRuns = 1;
    public const uint EncodingRunsDeflate = 2;

    /// <summary>Upper bound of a decoded run list for <paramref name="pageCount"/> pages: at most ⌈n/2⌉ runs of two varints ≤ 10 bytes each.</summary>
    public static long MaxDecodedBytes(long pageCount) => 20 * ((pageCount + 1) / 2) + 20;

    /// <summary>Appends the run list of the set pages of <paramref name="dirty"/> to <paramref name="output"/>; returns the number of set pages.</summary>
    internal static long EncodeRuns(DirtyBitmap dirty, Stream output)
    {
        Span<byte> scratch = stackalloc byte[20];
        long count = 0, previousEnd = 0;
        for (long start = 0; (start = dirty.NextRun(start, out long end)) < dirty.PageCount; start = end)
        {
            int n = WriteVarint(scratch, (ulong)(start - previousEnd));
            n += WriteVarint(scratch[n..], (ulong)(end - start - 1));
            output.Write(scratch[..n]);
            count += end - start;
            previousEnd = end;
        }
        return count;
    }

    /// <summary>LEB128 encoding of <paramref name="value"/>; returns the bytes written (1..10).</summary>
    internal static int WriteVarint(Span<byte> into, ulong value)
    {
        int i = 0;
        while (value >= 0x80)
        {
            into[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        into[i++] = (byte)value;
        return i;
    }

    /// <summary>Sets pages [<paramref name="start"/>, <paramref name="end"/>) in <paramref name="words"/>.</summary>
    internal static void SetRange(Span<ulong> words, long start, long end)
    {
        while (start < end)
        {
            int w = (int)(start >> 6);
            int bit = (int)(start & 63);
            long inWord = Math.Min(64 - bit, end - start);
            ulong mask = inWord == 64 ? ulong.MaxValue : ((1UL << (int)inWord) - 1) << bit;
            words[w] |= mask;
            start += inWord;
        }
    }
}
