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

    public Option<string?> GuestImage { get; } = new("--guest-image")
    {
        Description = "Path of workload.bin (default: guests/workload.bin next to the executable)",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Workload);
        command.Options.Add(Memory);
        command.Options.Add(Seed);
        command.Options.Add(GuestImage);
    }

    public MachineConfig ToConfig(ParseResult r)
    {
        string name = r.GetValue(Workload)!;
        long? memory = r.GetValue(Memory) is { } m ? Units.ParseSize(m) : null;
        var config = new MachineConfig
        {
            MemorySize = memory ?? Units.ParseSize(DefaultMemory),
            Seed = r.GetValue(Seed),
            GuestImage = r.GetValue(GuestImage),
        };
        if (TraceWorkload.TryParse(name, out string trace)) return TraceWorkload.Configure(config, trace, memory);
        if (!Enum.TryParse(name, ignoreCase: true, out Workload w) || w is Vmm.Workload.Pattern or Vmm.Workload.Replay || !Enum.IsDefined(w))
            throw new ArgumentException($"unknown workload '{name}'; choose idle, text, audio, movie, database or trace:FILE");
        return config with { Workload = w };
    }
}
