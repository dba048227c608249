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
    public static long AutoMemory(string path) => MemoryFor(new MachineConfig(), path, PagesOf(path), memory: null);

    /// <summary>Refuses <paramref name="memory"/> bytes for a replay of <paramref name="path"/> when the trace does not fit (the message names both sizes and --memory).</summary>
    public static void CheckMemory(string path, long memory) => MemoryFor(new MachineConfig(), path, PagesOf(path), memory);

    /// <summary>
    /// <paramref name="config"/> turned into a replay of <paramref name="path"/>; <paramref name="memory"/> null = sized from the
    /// trace (<see cref="ReplayLayout.AutoMemory"/>). The feed opened here is owned by the machine booted from the result. Without
    /// a page content of its own the guest writes pages like the trace's application's (<see cref="PageContent.DefaultForApplication"/>).
    /// </summary>
    public static MachineConfig Configure(MachineConfig config, string path, long? memory)
    {
        CheckExists(path);
        TraceReplayFeed feed = TraceReplayFeed.Open(path);
        try
        {
            return config with
            {
                Workload = Workload.Replay, MemorySize = MemoryFor(config, path, feed.PageCount, memory), ReplayFeed = feed,
                PageContent = config.PageContent ?? PageContent.DefaultForApplication(feed.Name),
            };
        }
        catch
        {
            feed.Dispose();
            throw;
        }
    }

    /// <summary>The pages the trace at <paramref name="path"/> covers (its header, validated for replay).</summary>
    private static long PagesOf(string path)
    {
        CheckExists(path);
        return TraceReplayFeed.PagesOf(path);
    }

    private static void CheckExists(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--workload trace:{path}: no such trace file (record one with 'kvmpresync trace record')", path);
    }

    /// <summary>
    /// The guest memory for replaying <paramref name="pageCount"/> pages on <paramref name="config"/>'s image and fill:
    /// <paramref name="memory"/> when it is enough (refused, naming both sizes, when not), else sized from the trace.
    /// </summary>
    private static long MemoryFor(MachineConfig config, string path, long pageCount, long? memory)
    {
        string image = config.GuestImage ?? MachineConfig.DefaultGuestImage;
        // Without the image Machine.Boot reports it; the check needs its size for where the heap starts.
        long imageLength = File.Exists(image) ? new FileInfo(image).Length : 0;
        ulong heapStart = RamLayout.HeapStart(imageLength);
        long fill = config.FillBytes ?? 0;
        long needed = ReplayLayout.RequiredMemory(heapStart, fill, pageCount);
        long auto = ReplayLayout.AutoMemory(heapStart, fill, pageCount);
        if (memory is { } given && given < needed)
            throw new ArgumentException(
                $"trace {path} covers {pageCount} pages ({Units.FormatBytes(pageCount * 4096.0)}); replayed with the guest's own pages " +
                $"(boot area, image, version table) it needs {Units.FormatBytes(needed)} of guest memory, but --memory gives {Units.FormatBytes(given)}: " +
                $"raise --memory to at least {auto >> 20}M, or leave --memory out to size the guest from the trace");
        return memory ?? auto;
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
        TraceReplayFeed.PagesOf(path); // throws when it is not a replayable trace
        return Path.GetFileNameWithoutExtension(path);
    }
}
