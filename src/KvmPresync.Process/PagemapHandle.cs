using KvmPresync.Core;
using KvmPresync.ProcessMemory.Interop;

namespace KvmPresync.ProcessMemory;

/// <summary>An open <c>/proc/PID/pagemap</c> (the descriptor PAGEMAP_SCAN runs on), closed exactly once.</summary>
public sealed class PagemapHandle : FileDescriptorHandle
{
    private PagemapHandle(int fd, int pid) : base(fd) => ProcessId = pid;

    /// <summary>The tracked process (0 = this process).</summary>
    public int ProcessId { get; }

    /// <summary>Opens <c>/proc/<paramref name="pid"/>/pagemap</c> (<paramref name="pid"/> 0: this process's).</summary>
    public static PagemapHandle Open(int pid)
    {
        int fd = ProcessNative.PagemapOpen(pid);
        if (fd < 0)
        {
            int errno = -fd;
            string hint = errno switch
            {
                2 or 3 => $"process {pid} does not exist (any more)",
                1 or 13 => $"reading another process's pagemap needs ptrace access to it: run as root or as its user with kernel.yama.ptrace_scope 0",
                _ => "check that /proc is mounted",
            };
            throw new ProcessTrackingException($"open /proc/{(pid > 0 ? pid.ToString() : "self")}/pagemap", errno, hint);
        }
        return new PagemapHandle(fd, pid);
    }

    internal int Descriptor => Fd;
}
