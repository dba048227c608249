using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace KvmPresync.Memory;

/// <summary>
/// A 32-byte digest of all guest memory, used in the paused final phase: the source sends its digest, the
/// destination computes its own after applying every page, and resumes only if they are equal.
/// <para>
/// It is ordered: SHA-256 over a 24-byte header and every page's <see cref="PageHasher"/> hash in page order.
/// <code>
/// offset  size  field
///      0     8  magic "KPSMDG01" (ASCII; the 01 is the page-hash algorithm version)
///      8     4  page size in bytes, u32 little-endian
///     12     4  reserved, 0
///     16     8  page count, u64 little-endian
///     24  8·n   hash of page 0, 1, …, n-1, each u64 little-endian
/// </code>
/// Position binds the page number, so two swapped pages change the digest; the header binds size and
/// layout. Hashes can come from wherever each side already has them (<see cref="SetPage"/>, e.g. the sender's
/// last-sent hash table) or be computed from memory (<see cref="HashPages"/>, <see cref="Of"/>).
/// </para>
/// </summary>
public sealed class MemoryDigest
{
    /// <summary>Length of the digest in bytes (SHA-256).</summary>
    public const int Size = 32;

    private const int HeaderSize = 24;
    private static ReadOnlySpan<byte> Magic => "KPSMDG01"u8;

    private readonly ulong[] _hashes;
    private readonly DirtyBitmap _present;

    /// <summary>An empty digest for <paramref name="pageCount"/> pages of <paramref name="pageSize"/> bytes; every page must be set before <see cref="Compute()"/>.</summary>
    public MemoryDigest(long pageCount, int pageSize)
    {
        if (pageCount <= 0 || pageCount > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount, $"page count must be between 1 and {Array.MaxLength}");
        if (pageSize <= 0 || pageSize % PageHasher.BlockSize != 0)
            throw new ArgumentException(
                $"page size {pageSize} is not a positive multiple of {PageHasher.BlockSize} bytes; pass the guest page size (4096 on x86-64)", nameof(pageSize));
        PageCount = pageCount;
        PageSize = pageSize;
        _hashes = new ulong[pageCount];
        _present = new DirtyBitmap(pageCount);
    }

    public long PageCount { get; }

    public int PageSize { get; }

    /// <summary>Pages that have no hash yet.</summary>
    public long MissingPages => PageCount - _present.Count();

    /// <summary>Records the hash of one page.</summary>
    public void SetPage(long page, ulong hash)
    {
        CheckRange(page, 1, nameof(page));
        _hashes[page] = hash;
        _present[page] = true;
    }

    /// <summary>The hash recorded for <paramref name="page"/> (0 when none was).</summary>
    public ulong PageHash(long page)
    {
        CheckRange(page, 1, nameof(page));
        return _hashes[page];
    }

    /// <summary>Records the hashes of pages firstPage, firstPage+1, … (one per element).</summary>
    public void SetPages(long firstPage, ReadOnlySpan<ulong> hashes)
    {
        CheckRange(firstPage, hashes.Length, nameof(firstPage));
        hashes.CopyTo(_hashes.AsSpan((int)firstPage, hashes.Length));
        for (int i = 0; i < hashes.Length; i++) _present[firstPage + i] = true;
    }

    /// <summary>
    /// Hashes every page of <paramref name="memory"/> (one memory slot, say) and records them as pages
    /// firstPage, firstPage+1, …. The length must be a whole number of pages.
    /// </summary>
    public void HashPages(long firstPage, ReadOnlySpan<byte> memory)
    {
        if (memory.Length % PageSize != 0)
            throw new ArgumentException(
                $"memory of {memory.Length} bytes is not a whole number of {PageSize}-byte pages; pass the full page-aligned region", nameof(memory));
        int count = memory.Length / PageSize;
        CheckRange(firstPage, count, nameof(firstPage));
        for (int n = 0; n < count; n++)
        {
            _hashes[firstPage + n] = PageHasher.Hash(memory.Slice(n * PageSize, PageSize), out _);
            _present[firstPage + n] = true;
        }
    }

    /// <summary>The digest. Throws if any page has no hash, since a partial digest would verify nothing.</summary>
    public byte[] Compute()
    {
        byte[] digest = new byte[Size];
        Compute(digest);
        return digest;
    }

    /// <summary>Writes the digest (<see cref="Size"/> bytes) to <paramref name="destination"/>.</summary>
    public void Compute(Span<byte> destination)
    {
        if (destination.Length < Size)
            throw new ArgumentException($"destination has {destination.Length} bytes; the digest needs {Size}", nameof(destination));
        long missing = MissingPages;
        if (missing != 0)
            throw new InvalidOperationException(
                $"{missing} of {PageCount} pages have no hash (first: page {FirstMissingPage()}); set or hash every page before computing the digest");

        ComputeFlat(_hashes, PageSize, destination);
    }

    /// <summary>
    /// The flat digest (the definition above) over page hashes a side already keeps in page order (e.g. a
    /// <see cref="PageHashTree"/>'s <see cref="PageHashTree.Hashes"/>): SHA-256 over 8 bytes per page, no page re-read.
    /// </summary>
    public static void ComputeFlat(ReadOnlySpan<ulong> hashes, int pageSize, Span<byte> destination)
    {
        if (destination.Length < Size)
            throw new ArgumentException($"destination has {destination.Length} bytes; the digest needs {Size}", nameof(destination));
        Span<byte> header = stackalloc byte[HeaderSize];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], (uint)pageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(header[16..], (ulong)hashes.Length);

        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(header);
        const int chunk = 1 << 16; // hashes per AppendData: keeps byte lengths far below int.MaxValue
        ulong[]? swapped = BitConverter.IsLittleEndian ? null : new ulong[chunk];
        for (int start = 0; start < hashes.Length; start += chunk)
        {
            ReadOnlySpan<ulong> part = hashes.Slice(start, Math.Min(chunk, hashes.Length - start));
            if (swapped is not null)
            {
                BinaryPrimitives.ReverseEndianness(part, swapped);
                part = swapped.AsSpan(0, part.Length);
            }
            sha.AppendData(MemoryMarshal.AsBytes(part));
        }
        if (!sha.TryGetHashAndReset(destination, out int written) || written != Size)
            throw new CryptographicException($"SHA-256 produced {written} bytes instead of {Size}");
    }

    /// <summary>The digest of <paramref name="memory"/> viewed as consecutive pages of <paramref name="pageSize"/> bytes.</summary>
    public static byte[] Of(ReadOnlySpan<byte> memory, int pageSize)
    {
        if (pageSize <= 0 || memory.Length == 0 || memory.Length % pageSize != 0)
            throw new ArgumentException(
                $"memory of {memory.Length} bytes is not a non-empty whole number of {pageSize}-byte pages; pass the full page-aligned guest memory", nameof(memory));
        var digest = new MemoryDigest(memory.Length / pageSize, pageSize);
        digest.HashPages(0, memory);
        return digest.Compute();
    }

    /// <summary>True when both are digests (<see cref="Size"/> bytes) and equal; constant-time.</summary>
    public static bool Matches(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
        => a.Length == Size && b.Length == Size && CryptographicOperations.FixedTimeEquals(a, b);

    private void CheckRange(long first, int count, string paramName)
    {
        if (first < 0 || first + count > PageCount)
            throw new ArgumentOutOfRangeException(paramName, first,
                $"pages {first}..{first + count - 1} are outside the digest's {PageCount} pages");
    }

    private long FirstMissingPage()
    {
        ReadOnlySpan<ulong> words = _present.ReadOnlyWords;
        for (int w = 0; w < words.Length; w++)
        {
            if (words[w] != ulong.MaxValue)
            {
                long page = w * 64L + System.Numerics.BitOperations.TrailingZeroCount(~words[w]);
                if (page < PageCount) return page;
            }
        }
        return -1;
    }
}
