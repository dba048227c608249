using KvmPresync.Vmm;
using KvmPresync.Vmm.Replay;

namespace KvmPresync.Cli.Replay;

/// <summary>
/// The <c>trace:FILE</c> workload: a replay guest (<see cref="Workload.Replay"/>) that writes the pages a recorded trace
/// says, at their recorded times. Guest memory is sized from the trace unless <c>--memory</c> was given; a given size too
/// small for the trace is refused, naming both sizes.
/// </summary>
internal static class TraceWorkload
{
    public const string Prefix = "trace:";

    /// <summary>True when <paramref name="spec"/> is <c>trace:FILE</c>; <paramref name="path"/> is FILE.</summary>
    public static bool TryParse(string spec, out string path)
    {
        path = "";
        if (!spec.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)) return false;
        path = spec[Prefix.Length..];
        if (path.Length == 0) throw new ArgumentException("--workload trace:FILE: name the trace file after 'trace:', e.g. trace:movie.kpt");
        return true;
    }

    /// <summary>The guest memory a replay of <paramref name="path"/> gets when none is asked for (the default guest image).</summary>
    public static long AutoMemory(string path)
    {
        MachineConfig c = Configure(new MachineConfig(), path, memory: null);
        (c.ReplayFeed as IDisposable)?.Dispose();
        return c.MemorySize;
    }

    /// <summary>Refuses <paramref name="memory"/> bytes for a replay of <paramref name="path"/> when the trace does not fit (the message names both sizes and --memory).</summary>
    public static void CheckMemory(string path, long memory)
    {
        MachineConfig c = Configure(new MachineConfig(), path, memory);
        (c.ReplayFeed as IDisposable)?.Dispose();
    }

    /// <summary>
    /// <paramref name="config"/> turned into a replay of <paramref name="path"/>; <paramref name="memory"/> null = sized from the
    /// trace (<see cref="ReplayLayout.AutoMemory"/>). The feed opened here is owned by the machine booted from the result.
    /// </summary>
    public static MachineConfig Configure(MachineConfig config, string path, long? memory)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--workload trace:{path}: no such trace file (record one with 'kvmpresync trace record')", path);
        TraceReplayFeed feed = TraceReplayFeed.Open(path);
        try
        {
            string image = config.GuestImage ?? MachineConfig.DefaultGuestImage;
            // Without the image Machine.Boot reports it; the check needs its size for where the heap starts.
            long imageLength = File.Exists(image) ? new FileInfo(image).Length : 0;
            ulong heapStart = RamLayout.HeapStart(imageLength);
            long fill = config.FillBytes ?? 0;
            long needed = ReplayLayout.RequiredMemory(heapStart, fill, feed.PageCount);
            long auto = ReplayLayout.AutoMemory(heapStart, fill, feed.PageCount);
            if (memory is { } given && given < needed)
                throw new ArgumentException(
                    $"trace {path} covers {feed.PageCount} pages ({Units.FormatBytes(feed.PageCount * 4096.0)}); replayed with the guest's own pages " +
                    $"(boot area, image, version table) it needs {Units.FormatBytes(needed)} of guest memory, but --memory gives {Units.FormatBytes(given)}: " +
                    $"raise --memory to at least {auto >> 20}M, or leave --memory out to size the guest from the trace");
            return config with { Workload = Workload.Replay, MemorySize = memory ?? auto, ReplayFeed = feed };
        }
        catch
        {
            feed.Dispose();
            throw;
        }
    }

    /// <summary>The name a workload shows in outputs: a trace's workload name (or file stem), else the workload's own.</summary>
    public static string NameOf(MachineConfig config) =>
        config.ReplayFeed is TraceReplayFeed feed ? feed.Name : config.Workload.ToString().ToLowerInvariant();

    /// <summary>
    /// The name of a <c>--workloads</c> entry in repro's outputs: a trace's file name without its extension (checked to
    /// be a readable trace now) — not its workload name, which a captured program's trace shares with the model of it
    /// (tests/data/traces/apps/text-vim.kptrace is workload "text").
    /// </summary>
    public static string NameOf(string spec)
    {
        if (!TryParse(spec, out string path)) return spec;
        using TraceReplayFeed feed = TraceReplayFeed.Open(path);
        return Path.GetFileNameWithoutExtension(path);
    }
}
