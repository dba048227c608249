using KvmPresync.Core;
using System.Numerics;
using KvmPresync.Memory;

namespace KvmPresync.Engine;

/// <summary>
/// Wire bytes to send one page: a non-zero page costs its header plus its content, a page known to be all zero
/// costs only its header (the receiver fills zeros). Pages are non-zero unless a zero-page map says otherwise.
/// </summary>
public sealed class PageCost
{
    private readonly DirtyBitmap? _nonZero;

    /// <param name="pageSize">Bytes per page.</param>
    /// <param name="headerBytes">Per-page header bytes on the wire (page number, flags, length).</param>
    /// <param name="nonZeroPages">Pages known to hold non-zero content; null = every page is non-zero. Not copied: the caller may mark pages non-zero as they are dirtied.</param>
    public PageCost(int pageSize, int headerBytes, DirtyBitmap? nonZeroPages = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pageSize);
        ArgumentOutOfRangeException.ThrowIfNegative(headerBytes);
        PageSize = pageSize;
        HeaderBytes = headerBytes;
        _nonZero = nonZeroPages;
    }

    public int PageSize { get; }

    public int HeaderBytes { get; }

    /// <summary>Cost of a page with content: header + page size.</summary>
    public long FullPageBytes => (long)PageSize + HeaderBytes;

    /// <summary>True when some pages may be zero (costs differ per page).</summary>
    public bool HasZeroPages => _nonZero is not null;

    /// <summary>Wire bytes to send <paramref name="page"/> now.</summary>
    public long Of(long page) => _nonZero is null || _nonZero[page] ? FullPageBytes : HeaderBytes;

    /// <summary>Wire bytes to send the pages set in <paramref name="mask"/> of 64-page word <paramref name="word"/>.</summary>
    public long OfWord(int word, ulong mask)
    {
        if (_nonZero is null) return BitOperations.PopCount(mask) * FullPageBytes;
        ulong nz = _nonZero.ReadOnlyWords[word];
        return BitOperations.PopCount(mask & nz) * FullPageBytes + BitOperations.PopCount(mask & ~nz) * (long)HeaderBytes;
    }
}
