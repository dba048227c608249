using KvmPresync.Interop;
using KvmPresync.Core;

namespace KvmPresync.Memory;

/// <summary>
/// A contiguous block of guest memory: an anonymous memfd mapped shared read-write into this process.
/// Pages are handed out as spans into the mapping — no copies. Owns its memfd and mapping handles.
/// </summary>
public sealed unsafe class GuestMemory : IDisposable
{
    private readonly MemfdHandle _memfd;
    private readonly MappingHandle _mapping;

    private GuestMemory(MemfdHandle memfd, MappingHandle mapping, long size, int pageSize)
    {
        _memfd = memfd;
        _mapping = mapping;
        Size = size;
        PageSize = pageSize;
    }

    /// <summary>The host page size, the unit of dirty tracking.</summary>
    public static int HostPageSize => Environment.SystemPageSize;

    public long Size { get; }

    public int PageSize { get; }

    public long PageCount => Size / PageSize;

    /// <summary>Address of the mapping in this process (for KVM_SET_USER_MEMORY_REGION and gather I/O).</summary>
    public nint Address => _mapping.Address;

    /// <summary>Creates <paramref name="size"/> bytes of zeroed guest memory.</summary>
    /// <param name="hugePages">Advise transparent huge pages (fewer TLB misses; advisory only).</param>
    public static GuestMemory Create(long size, bool hugePages = false, string name = "kvmpresync-guest")
    {
        int pageSize = HostPageSize;
        if (size <= 0 || size % pageSize != 0)
            throw new ArgumentException($"guest memory size {size} is not a positive multiple of the page size ({pageSize} bytes)", nameof(size));
        int fd = SystemCallException.Check(Native.MemfdCreate(name, (ulong)size), "memfd_create/ftruncate",
            "Check that the machine has enough memory for the guest");
        var memfd = new MemfdHandle(fd);
        nint addr = Native.MmapShared(fd, (ulong)size, hugePages ? Native.MapHugePage : 0, out int err);
        if (addr == 0)
        {
            memfd.Dispose();
            throw new SystemCallException("mmap(guest memory)", -err);
        }
        return new GuestMemory(memfd, new MappingHandle(addr, (ulong)size), size, pageSize);
    }

    /// <summary>The bytes of page <paramref name="page"/> (0-based within this block).</summary>
    public Span<byte> Page(long page)
    {
        if ((ulong)page >= (ulong)PageCount)
            throw new ArgumentOutOfRangeException(nameof(page), page, $"page outside guest memory of {PageCount} pages");
        // Safe: the page lies inside the live mapping (checked above); the span dies with the caller's use.
        return new Span<byte>((byte*)_mapping.Address + page * PageSize, PageSize);
    }

    /// <summary><paramref name="length"/> bytes at <paramref name="offset"/>.</summary>
    public Span<byte> Slice(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Size - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, {offset}+{length}) outside guest memory of {Size} bytes");
        // Safe: the range lies inside the live mapping (checked above).
        return new Span<byte>((byte*)_mapping.Address + offset, length);
    }

    /// <summary>Raw pointer to page <paramref name="page"/>, for gather I/O that must not copy.</summary>
    internal byte* PagePointer(long page)
    {
        if ((ulong)page >= (ulong)PageCount)
            throw new ArgumentOutOfRangeException(nameof(page), page, $"page outside guest memory of {PageCount} pages");
        return (byte*)_mapping.Address + page * PageSize;
    }

    public void Dispose()
    {
        _mapping.Dispose();
        _memfd.Dispose();
    }
}
