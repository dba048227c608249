using System.Globalization;

namespace KvmPresync.Libvirt.Presync;

/// <summary>
/// The QEMU process of a running domain on this host, found by the <c>-uuid</c> on its command line (libvirt always
/// passes it). A QEMU started <c>-incoming</c> (a migration's destination) is never taken for the source.
/// </summary>
public static class QemuProcess
{
    /// <summary>The pid, or throws <see cref="InvalidOperationException"/> saying why none (or more than one) matched.</summary>
    public static int FindSource(Guid uuid)
    {
        string wanted = uuid.ToString("D");
        var found = new List<int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            string[] args;
            try { args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0'); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            int at = Array.IndexOf(args, "-uuid");
            if (at < 0 || at + 1 >= args.Length || !string.Equals(args[at + 1], wanted, StringComparison.OrdinalIgnoreCase)) continue;
            if (args.Contains("-incoming")) continue;
            found.Add(pid);
        }
        return found.Count switch
        {
            1 => found[0],
            0 => throw new InvalidOperationException($"no QEMU process with -uuid {wanted} runs on this host: is the domain running here, and is this root?"),
            _ => throw new InvalidOperationException($"{found.Count} QEMU processes run with -uuid {wanted} (pids {string.Join(", ", found)}): cannot tell the domain's"),
        };
    }
}
