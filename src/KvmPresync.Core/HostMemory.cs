namespace KvmPresync.Core;

/// <summary>Room on this host for a guest's memory.</summary>
public static class HostMemory
{
    /// <summary>MemAvailable from /proc/meminfo: what the kernel estimates can be allocated without swapping.</summary>
    public static long AvailableBytes(string meminfo = "/proc/meminfo")
    {
        foreach (string line in File.ReadLines(meminfo))
        {
            // "MemAvailable:   12345678 kB"
            if (!line.StartsWith("MemAvailable:", StringComparison.Ordinal)) continue;
            string[] parts = line["MemAvailable:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && parts[1] == "kB" && long.TryParse(parts[0], System.Globalization.CultureInfo.InvariantCulture, out long kb))
                return kb * 1024;
            break;
        }
        throw new InvalidOperationException($"cannot read MemAvailable from {meminfo}; give the memory cap explicitly (kvmpresync receive --max-memory)");
    }
}
