using System.Globalization;

namespace KvmPresync.Vmm.Devices;

/// <summary>
/// The vCPU thread's scheduler figures: <c>/proc/thread-self/schedstat</c> opened on the vCPU thread itself (the open
/// file keeps naming that thread), re-read from any thread. Its fields are the time on a CPU and the time waiting on a
/// run queue, in ns, and the number of time slices (Documentation/scheduler/sched-stats.rst).
/// </summary>
internal sealed class VcpuThreadStats : IDisposable
{
    private readonly FileStream _file;
    private readonly byte[] _buffer = new byte[128];
    private readonly Lock _lock = new();

    private VcpuThreadStats(FileStream file) => _file = file;

    /// <summary>Opens the calling thread's schedstat; null when the kernel has none (no CONFIG_SCHED_INFO).</summary>
    public static VcpuThreadStats? OpenForCurrentThread()
    {
        try
        {
            return new VcpuThreadStats(new FileStream("/proc/thread-self/schedstat", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1));
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>(on-CPU ns, run-queue wait ns); null once the thread is gone or the file cannot be parsed.</summary>
    public (long OnCpuNs, long WaitNs)? Read()
    {
        lock (_lock)
        {
            int n;
            try
            {
                n = RandomAccess.Read(_file.SafeFileHandle, _buffer, 0);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                return null;
            }
            string[] f = System.Text.Encoding.ASCII.GetString(_buffer, 0, n).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return f.Length >= 2 && long.TryParse(f[0], NumberStyles.None, CultureInfo.InvariantCulture, out long cpu)
                   && long.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out long wait)
                ? (cpu, wait) : null;
        }
    }

    public void Dispose()
    {
        lock (_lock) _file.Dispose();
    }
}
