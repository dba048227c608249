using System.Runtime.Intrinsics;

namespace KvmPresync.Memory;

/// <summary>
/// 64-bit content hash of guest pages, with zero-page detection in the same pass. Used to skip pages whose
/// content the receiver already has, to flag zero pages, and (through <see cref="MemoryDigest"/>) to verify
/// that source and destination memory match before the destination resumes.
/// <para>
/// Not cryptographic: it detects accidental differences (any changed byte, moved blocks, torn copies) with
/// 64-bit odds, but someone who can choose page contents can build collisions. That is acceptable because the
/// peer is authenticated before any memory is written. The function is defined in docs/HASHING.md; the
/// scalar path is its reference and every vector path returns the same bits.
/// </para>
/// </summary>
public static partial class PageHasher
{
    /// <summary>Hash of a 4096-byte page of zeros (<see cref="ZeroPageHash"/> gives it for any page size).</summary>
    public const ulong ZeroPage4096Hash = 0x252C8883D2B9C0D9UL;

    /// <summary>The fastest path this CPU accelerates; fixed for the process.</summary>
    internal static HashPath BestPath { get; } =
        IsAccelerated(HashPath.Vector512) ? HashPath.Vector512
        : IsAccelerated(HashPath.Vector256) ? HashPath.Vector256
        : IsAccelerated(HashPath.Vector128) ? HashPath.Vector128
        : HashPath.Scalar;

    /// <summary>
    /// Hashes one page and reports whether every byte is zero. The length is the page size: a positive
    /// multiple of 64 bytes (4096 on x86-64 hosts).
    /// </summary>
    public static ulong Hash(ReadOnlySpan<byte> page, out bool isZero)
    {
        CheckPageSize(page.Length, nameof(page));
        return HashUnchecked(page, out isZero, BestPath);
    }

    /// <summary>Same as <see cref="Hash(ReadOnlySpan{byte}, out bool)"/> but on a chosen path (tests and benchmarks).</summary>
    /// <exception cref="PlatformNotSupportedException">This CPU does not accelerate <paramref name="path"/>.</exception>
    internal static ulong Hash(ReadOnlySpan<byte> page, out bool isZero, HashPath path)
    {
        CheckPageSize(page.Length, nameof(page));
        CheckPath(path);
        return HashUnchecked(page, out isZero, path);
    }

    /// <summary>
    /// Hashes the pages numbered <paramref name="pages"/> of <paramref name="memory"/> (page n is bytes
    /// [n·pageSize, (n+1)·pageSize)), reading straight from the span: hashes[i] and zero[i] describe pages[i].
    /// </summary>
    public static void HashPages(ReadOnlySpan<byte> memory, int pageSize, ReadOnlySpan<long> pages, Span<ulong> hashes, Span<bool> zero)
        => HashPages(memory, pageSize, pages, hashes, zero, BestPath);

    internal static void HashPages(ReadOnlySpan<byte> memory, int pageSize, ReadOnlySpan<long> pages, Span<ulong> hashes, Span<bool> zero, HashPath path)
    {
        CheckPageSize(pageSize, nameof(pageSize));
        CheckWholePages(memory.Length, pageSize, nameof(memory));
        if (hashes.Length != pages.Length)
            throw new ArgumentException($"hashes has {hashes.Length} entries but pages has {pages.Length}; pass one output slot per page number", nameof(hashes));
        if (zero.Length != pages.Length)
            throw new ArgumentException($"zero has {zero.Length} entries but pages has {pages.Length}; pass one output slot per page number", nameof(zero));
        CheckPath(path);
        long pageCount = memory.Length / pageSize;
        for (int i = 0; i < pages.Length; i++)
        {
            long page = pages[i];
            if ((ulong)page >= (ulong)pageCount)
                throw new ArgumentOutOfRangeException(nameof(pages), page,
                    $"page number {page} (pages[{i}]) is outside the memory given: {pageCount} pages of {pageSize} bytes");
            if (i + PrefetchDistance < pages.Length && (ulong)pages[i + PrefetchDistance] < (ulong)pageCount)
                PrefetchHead(memory.Slice((int)pages[i + PrefetchDistance] * pageSize, pageSize));
            hashes[i] = HashUnchecked(memory.Slice((int)page * pageSize, pageSize), out zero[i], path);
        }
    }

    /// <summary>Hashes every page of <paramref name="memory"/> in order: hashes[n] and zero[n] describe page n.</summary>
    public static void HashAllPages(ReadOnlySpan<byte> memory, int pageSize, Span<ulong> hashes, Span<bool> zero)
        => HashAllPages(memory, pageSize, hashes, zero, BestPath);

    internal static void HashAllPages(ReadOnlySpan<byte> memory, int pageSize, Span<ulong> hashes, Span<bool> zero, HashPath path)
    {
        CheckPageSize(pageSize, nameof(pageSize));
        CheckWholePages(memory.Length, pageSize, nameof(memory));
        int pageCount = memory.Length / pageSize;
        if (hashes.Length != pageCount)
            throw new ArgumentException($"hashes has {hashes.Length} entries but memory holds {pageCount} pages of {pageSize} bytes; pass one slot per page", nameof(hashes));
        if (zero.Length != pageCount)
            throw new ArgumentException($"zero has {zero.Length} entries but memory holds {pageCount} pages of {pageSize} bytes; pass one slot per page", nameof(zero));
        CheckPath(path);
        for (int n = 0; n < pageCount; n++)
        {
            if (n + PrefetchDistance < pageCount)
                PrefetchHead(memory.Slice((n + PrefetchDistance) * pageSize, pageSize));
            hashes[n] = HashUnchecked(memory.Slice(n * pageSize, pageSize), out zero[n], path);
        }
    }

    /// <summary>
    /// Hash of a page of <paramref name="pageSize"/> zero bytes — what the receiver records for a page sent
    /// as a zero flag. Computed (not looked up), so cache it if it is needed per page.
    /// </summary>
    public static ulong ZeroPageHash(int pageSize)
    {
        CheckPageSize(pageSize, nameof(pageSize));
        byte[] zeros = new byte[pageSize];
        return HashUnchecked(zeros, out _, BestPath);
    }

    /// <summary>True when <paramref name="path"/> runs on vector hardware here (the scalar path always does).</summary>
    internal static bool IsAccelerated(HashPath path) => path switch
    {
        HashPath.Scalar => true,
        HashPath.Vector128 => BitConverter.IsLittleEndian && Vector128.IsHardwareAccelerated,
        HashPath.Vector256 => BitConverter.IsLittleEndian && Vector256.IsHardwareAccelerated,
        HashPath.Vector512 => BitConverter.IsLittleEndian && Vector512.IsHardwareAccelerated,
        _ => false,
    };

    private static ulong HashUnchecked(ReadOnlySpan<byte> page, out bool isZero, HashPath path) => path switch
    {
        HashPath.Vector512 => HashVector512(page, out isZero),
        HashPath.Vector256 => HashVector256(page, out isZero),
        HashPath.Vector128 => HashVector128(page, out isZero),
        _ => HashScalar(page, out isZero),
    };

    private static void CheckPageSize(int pageSize, string paramName)
    {
        if (pageSize <= 0 || pageSize % BlockSize != 0)
            throw new ArgumentException(
                $"page size {pageSize} is not a positive multiple of {BlockSize} bytes; pass whole guest pages (4096 bytes on x86-64)", paramName);
    }

    private static void CheckWholePages(int memoryLength, int pageSize, string paramName)
    {
        if (memoryLength % pageSize != 0)
            throw new ArgumentException(
                $"memory of {memoryLength} bytes is not a whole number of {pageSize}-byte pages; pass the full page-aligned region", paramName);
    }

    private static void CheckPath(HashPath path)
    {
        if ((uint)path > (uint)HashPath.Vector512)
            throw new ArgumentOutOfRangeException(nameof(path), path, "unknown hash path");
        if (!IsAccelerated(path))
            throw new PlatformNotSupportedException($"hash path {path} is not hardware-accelerated on this CPU; use {BestPath} or Scalar");
    }
}
