using System.CommandLine;
using KvmPresync.Cli.Replay;
using KvmPresync.Vmm;

namespace KvmPresync.Cli;

/// <summary>The options every command that boots a workload guest shares.</summary>
internal sealed class GuestOptions
{
    public Option<string> Workload { get; } = new("--workload", "-w")
    {
        Description = "Workload guest: idle, text, audio, movie, database, or trace:FILE (replays a recorded dirty trace's page writes at their recorded times, looping; docs/WORKLOADS.md)",
        DefaultValueFactory = _ => "idle",
    };

    public const string DefaultMemory = "256M";

    public Option<string?> Memory { get; } = new("--memory", "-m")
    {
        Description = $"Guest memory, e.g. 512M (default {DefaultMemory}; with --workload trace:FILE, sized to hold the trace)",
    };

    public Option<ulong> Seed { get; } = new("--seed")
    {
        Description = "Seed of the guest's data and behaviour",
        DefaultValueFactory = _ => 1UL,
    };

    public Option<string> PageContent { get; } = new("--page-content")
    {
        Description = "How compressible the guest's data pages are: auto (default: the workload's real program — text 0.161 like vim's pages, " +
                      "audio 0.336 and movie 0.248 like mpv's, database 0.151 like PostgreSQL's; a trace:FILE replay its application's " +
                      "(cache 0.698 like memcached's), else random; idle random), random (pseudo-random words, incompressible), or the LZ4 " +
                      "compressed/raw ratio to aim for, e.g. 0.25 (docs/WORKLOADS.md, \"Page content\")",
        DefaultValueFactory = _ => "auto",
    };

    public Option<string?> GuestImage { get; } = new("--guest-image")
    {
        Description = "Path of workload.bin (default: guests/workload.bin next to the executable)",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Workload);
        command.Options.Add(Memory);
        command.Options.Add(Seed);
        command.Options.Add(PageContent);
        command.Options.Add(GuestImage);
    }

    public MachineConfig ToConfig(ParseResult r)
    {
        string name = r.GetValue(Workload)!;
        long? memory = r.GetValue(Memory) is { } m ? Units.ParseSize(m, Memory.Name) : null;
        string content = r.GetValue(PageContent)!;
        var config = new MachineConfig
        {
            MemorySize = memory ?? Units.ParseSize(DefaultMemory),
            Seed = r.GetValue(Seed),
            GuestImage = r.GetValue(GuestImage),
            PageContent = ParsePageContent(content),
        };
        if (TraceWorkload.TryParse(name, out string trace)) return TraceWorkload.Configure(config, trace, memory);
        if (!Enum.TryParse(name, ignoreCase: true, out Workload w) || w is Vmm.Workload.Pattern or Vmm.Workload.Replay || !Enum.IsDefined(w))
            throw new ArgumentException($"unknown workload '{name}'; choose idle, text, audio, movie, database or trace:FILE");
        return config with { Workload = w };
    }

    /// <summary>A <c>--page-content</c> value (run, trace record, repro): null for <c>auto</c> (the workload's default), else the content it names.</summary>
    public static Vmm.PageContent? ParsePageContent(string value)
    {
        if (value.Trim().Equals("auto", StringComparison.OrdinalIgnoreCase)) return null;
        try
        {
            return Vmm.PageContent.Parse(value);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"--page-content: {e.Message}, or 'auto' (the workload's default)");
        }
    }
}
