using KvmPresync.Interop;
using KvmPresync.Core;

namespace KvmPresync.Memory;

/// <summary>
/// A contiguous block of guest memory: an anonymous memfd (or, with <see cref="MapFile"/>, a file such as QEMU's RAM
/// backend) mapped shared read-write into this process.
/// Pages are handed out as spans into the mapping — no copies. Owns its memfd and mapping handles.
/// </summary>
public sealed unsafe class GuestMemory : IDisposable
{
    private readonly IDisposable _memfd; // the memfd, or the file mapped by MapFile
    private readonly MappingHandle _mapping;

    private GuestMemory(IDisposable memfd, MappingHandle mapping, long size, int pageSize)
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

    /// <summary>
    /// Maps <paramref name="size"/> bytes of the file at <paramref name="path"/> shared read-write: writes reach every other
    /// process mapping it (QEMU's memory-backend-file, or <c>/proc/PID/map_files/…</c> of another process's mapping).
    /// With <paramref name="create"/> the file is created (mode 0600, must not exist) and sized; otherwise it must exist and
    /// be at least <paramref name="size"/> bytes long.
    /// </summary>
    public static GuestMemory MapFile(string path, long size, bool create)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        int pageSize = HostPageSize;
        if (size <= 0 || size % pageSize != 0)
            throw new ArgumentException($"mapping size {size} is not a positive multiple of the page size ({pageSize} bytes)", nameof(size));
        Microsoft.Win32.SafeHandles.SafeFileHandle file = File.OpenHandle(path, create ? FileMode.CreateNew : FileMode.Open,
            FileAccess.ReadWrite, FileShare.ReadWrite);
        try
        {
            if (create)
            {
                if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                RandomAccess.SetLength(file, size); // sparse: pages take memory as they are written
            }
            long length = RandomAccess.GetLength(file);
            if (length < size)
                throw new IOException($"{path} holds {length} bytes, fewer than the {size} to map");
            nint addr = Native.MmapShared((int)file.DangerousGetHandle(), (ulong)size, 0, out int err);
            if (addr == 0) throw new SystemCallException($"mmap({path})", -err);
            return new GuestMemory(file, new MappingHandle(addr, (ulong)size), size, pageSize);
        }
        catch
        {
            file.Dispose();
            throw;
        }
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
