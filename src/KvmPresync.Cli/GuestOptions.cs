using System.CommandLine;
using KvmPresync.Vmm;

namespace KvmPresync.Cli;

/// <summary>The options every command that boots a workload guest shares.</summary>
internal sealed class GuestOptions
{
    public Option<string> Workload { get; } = new("--workload", "-w")
    {
        Description = "Workload guest: idle, text, audio or movie",
        DefaultValueFactory = _ => "idle",
    };

    public Option<string> Memory { get; } = new("--memory", "-m")
    {
        Description = "Guest memory, e.g. 256M",
        DefaultValueFactory = _ => "256M",
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
        if (!Enum.TryParse(name, ignoreCase: true, out Workload w) || w == Vmm.Workload.Pattern || !Enum.IsDefined(w))
            throw new ArgumentException($"unknown workload '{name}'; choose idle, text, audio or movie");
        return new MachineConfig
        {
            Workload = w,
            MemorySize = Units.ParseSize(r.GetValue(Memory)!),
            Seed = r.GetValue(Seed),
            GuestImage = r.GetValue(GuestImage),
        };
    }
}
