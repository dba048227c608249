namespace KvmPresync.ProcessMemory.Capture;

/// <summary>
/// Where a captured page lives: a shared object (a MAP_SHARED mapping of a file, shmem, memfd or SysV segment:
/// <see cref="Device"/> + <see cref="Inode"/>, the same for every process mapping it) or one process's private memory
/// (<see cref="Process"/>: its ordinal in the capture; an exec'd program is a new one).
/// </summary>
public sealed record MemorySpace(bool Shared, ulong Device, ulong Inode, int Process, int ProcessId, string Name)
{
    internal (bool, ulong, ulong, int) Key => Shared ? (true, Device, Inode, -1) : (false, 0, 0, Process);

    public override string ToString() => Shared ? $"shared {Name} (dev {Device >> 32:x}:{Device & 0xffffffff:x} inode {Inode})" : $"private pid {ProcessId} (#{Process})";
}

/// <summary>
/// A page's identity: its space (an index into <see cref="FirstWritePageSpace.Spaces"/>) and the page within it — the
/// file page (offset / page size) of a shared space, the virtual page number (address / page size) of a private one.
/// Ordered by space, then page, so a contiguous write stays a contiguous run.
/// </summary>
public readonly record struct PageIdentity(int Space, ulong Page) : IComparable<PageIdentity>
{
    public int CompareTo(PageIdentity other) => Space != other.Space ? Space.CompareTo(other.Space) : Page.CompareTo(other.Page);
}

/// <summary>A compact page: its identity, space and the name of the mapping it was first written in.</summary>
public readonly record struct CapturedPage(PageIdentity Identity, MemorySpace Space, string Region);
