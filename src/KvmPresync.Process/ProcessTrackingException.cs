using System.Runtime.InteropServices;

namespace KvmPresync.ProcessMemory;

/// <summary>
/// Tracking a process's memory failed: what failed (the step, the process, the range), the errno, and what to do about
/// it (e.g. Linux &lt; 6.7 without PAGEMAP_SCAN, a range the process never registered).
/// </summary>
public sealed class ProcessTrackingException : Exception
{
    public ProcessTrackingException(string operation, int errno, string hint)
        : base($"{operation} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}). {hint}")
    {
        Operation = operation;
        Errno = errno;
    }

    /// <summary>The step, e.g. <c>PAGEMAP_SCAN on /proc/123/pagemap [0x7f.., 0x7f..)</c>.</summary>
    public string Operation { get; }

    /// <summary>The errno (positive).</summary>
    public int Errno { get; }
}
