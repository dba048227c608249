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

    /// <summary>
    /// PAGEMAP_SCAN for the pages written in [<paramref name="start"/>, <paramref name="end"/>), re-armed by the same
    /// call, in as many calls as <paramref name="vec"/> needs (see <see cref="PagemapWalk"/>).
    /// </summary>
    /// <param name="skipUnregistered">Without PM_SCAN_CHECK_WPASYNC: VMAs never registered are skipped, not refused.</param>
    internal PagemapWalk ScanWritten(ulong start, ulong end, PageRegion[] vec, bool skipUnregistered) => new(Fd, start, end, vec, skipUnregistered);

    /// <summary>A failed PAGEMAP_SCAN over <paramref name="range"/>, with the fix for its errno.</summary>
    /// <param name="unregistered">The hint for EPERM (part of the range not registered), when the caller can tell.</param>
    internal ProcessTrackingException ScanFailure(string range, int errno, string? unregistered = null)
    {
        string who = ProcessId > 0 ? $"/proc/{ProcessId}/pagemap" : "/proc/self/pagemap";
        string hint = errno switch
        {
            1 when unregistered is not null => unregistered,
            22 or 25 => "this kernel has no PAGEMAP_SCAN (Linux >= 6.7 needed), or the range is not page aligned",
            3 or 2 => $"process {ProcessId} has exited",
            14 => $"the range is outside the process's address space",
            _ => "see PAGEMAP_SCAN in ioctl_pagemap_scan(2)",
        };
        return new ProcessTrackingException($"PAGEMAP_SCAN on {who} {range}", errno, hint);
    }
}

/// <summary>
/// One PAGEMAP_SCAN walk over a range: each <see cref="Next"/> is one call, resumed where the previous call's walk
/// ended (walk_end), until the range is done or a call makes no progress; a failed call ends it with <see cref="Errno"/>.
/// </summary>
internal ref struct PagemapWalk
{
    private readonly int _fd;
    private readonly ulong _end;
    private readonly PageRegion[] _vec;
    private readonly bool _skipUnregistered;
    private ulong _start;
    private bool _done;

    internal PagemapWalk(int fd, ulong start, ulong end, PageRegion[] vec, bool skipUnregistered)
    {
        _fd = fd;
        _start = start;
        _end = end;
        _vec = vec;
        _skipUnregistered = skipUnregistered;
    }

    /// <summary>Where the next call starts (where the failed one started, after an error).</summary>
    public readonly ulong Position => _start;

    /// <summary>The failed call's errno; 0 while none failed.</summary>
    public int Errno { get; private set; }

    /// <summary>The runs of written pages the next call reports (clamped to the range, already re-armed); false when the walk is over.</summary>
    public unsafe bool Next(out ReadOnlySpan<PageRegion> runs)
    {
        runs = default;
        if (_done || _start >= _end) return false;
        long n;
        ulong walkEnd;
        fixed (PageRegion* vec = _vec) // pinned for the ioctl's writes
        {
            n = _skipUnregistered
                ? ProcessNative.PagemapScanWrittenRegistered(_fd, _start, _end, vec, (ulong)_vec.Length, out walkEnd)
                : ProcessNative.PagemapScanWritten(_fd, _start, _end, vec, (ulong)_vec.Length, out walkEnd);
        }
        if (n < 0)
        {
            Errno = (int)-n;
            _done = true;
            return false;
        }
        runs = _vec.AsSpan(0, (int)n);
        if (walkEnd <= _start) _done = true; // no progress: nothing more to report in this range
        else _start = walkEnd;
        return true;
    }
}
