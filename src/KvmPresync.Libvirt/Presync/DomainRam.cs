using KvmPresync.Memory;
using KvmPresync.ProcessMemory;

namespace KvmPresync.Libvirt.Presync;

/// <summary>
/// A running domain's guest RAM as QEMU maps it: the shared mapping of its memory-backend-file (libvirt's
/// <c>&lt;memoryBacking&gt;&lt;source type='file'/&gt;&lt;access mode='shared'/&gt;&lt;/memoryBacking&gt;</c>), found in
/// /proc/PID/maps by its size, and mapped into this process through /proc/PID/map_files (root), so the bytes the sender
/// reads are the guest's own. The file offset is the RAM block offset, which is what the destination fills.
/// </summary>
public sealed class DomainRam : IDisposable
{
    private DomainRam(int pid, ProcessMemoryRegion region, GuestMemory memory)
    {
        ProcessId = pid;
        Region = region;
        Memory = memory;
    }

    public int ProcessId { get; }

    /// <summary>Where QEMU maps the RAM (its backing file's path as QEMU sees it, in <see cref="ProcessMemoryRegion.Name"/>).</summary>
    public ProcessMemoryRegion Region { get; }

    /// <summary>The same pages, mapped here.</summary>
    public GuestMemory Memory { get; }

    /// <summary>
    /// Finds QEMU's RAM mapping of <paramref name="bytes"/> bytes: a shared ("rw-s") file mapping of exactly that size
    /// (one RAM block: machines without NUMA nodes). Throws with the fix when the RAM is private or anonymous.
    /// </summary>
    public static ProcessMemoryRegion Locate(int pid, long bytes)
    {
        var candidates = new List<ProcessMemoryRegion>();
        var privateOfSize = 0;
        foreach (ProcessMemoryRegion.MapsLine line in ProcessMemoryRegion.ReadMaps(pid))
        {
            if ((long)(line.End - line.Start) != bytes) continue;
            if (line.Perms == "rw-s" && line.Name is { } name && name.StartsWith('/')) candidates.Add(new ProcessMemoryRegion(line.Start, line.End, name));
            else privateOfSize++;
        }
        if (candidates.Count == 1) return candidates[0];
        if (candidates.Count > 1)
        {
            ProcessMemoryRegion? ram = candidates.FirstOrDefault(c => c.Name!.EndsWith("/pc.ram", StringComparison.Ordinal));
            if (ram is not null) return ram;
            throw new InvalidOperationException($"QEMU {pid} maps {candidates.Count} shared files of {bytes} bytes ({string.Join(", ", candidates)}): cannot tell which is the RAM");
        }
        throw new InvalidOperationException(
            $"QEMU {pid} maps no shared file of the guest's {bytes >> 20} MiB" + (privateOfSize > 0 ? " (its RAM is private or anonymous)" : "") +
            ": the domain needs <memoryBacking><source type='file'/><access mode='shared'/></memoryBacking> (run `kvmpresync libvirt check DOMAIN`), then a restart");
    }

    /// <summary>Locates the RAM of QEMU <paramref name="pid"/> and maps it here.</summary>
    public static DomainRam Map(int pid, long bytes)
    {
        ProcessMemoryRegion region = Locate(pid, bytes);
        string path = $"/proc/{pid}/map_files/{region.Start:x}-{region.End:x}";
        try
        {
            return new DomainRam(pid, region, GuestMemory.MapFile(path, bytes, create: false));
        }
        catch (UnauthorizedAccessException e)
        {
            throw new UnauthorizedAccessException($"cannot open {path}: mapping another process's RAM needs root (CAP_SYS_ADMIN)", e);
        }
    }

    public void Dispose() => Memory.Dispose();
}
