using KvmPresync.Engine;
using System.CommandLine;
using KvmPresync.Trace;
using KvmPresync.Wire;

namespace KvmPresync.Cli.Commands;

/// <summary><c>kvmpresync simulate</c>: replays a recorded trace through the real engine policies over a modelled link.</summary>
internal static class SimulateCommand
{
    public static Command Create()
    {
        var trace = new Option<string>("--trace", "-t") { Description = "Trace file recorded by 'kvmpresync trace record'", Required = true };
        var link = new Option<string>("--link-rate") { Description = "Modelled link rate, e.g. 1gbit, 100mbit, 10MB/s", DefaultValueFactory = _ => "1gbit" };
        var policy = MigrationOptions.Policy();
        var warmup = new Option<string>("--warmup") { Description = "Replay this long first (initial copy, learning) outside the measured period, e.g. 10s", DefaultValueFactory = _ => "0s" };
        var duration = new Option<string?>("--duration") { Description = "Measured sync period after the warm-up, e.g. 30s (default: the rest of the trace)" };
        var json = new Option<string?>("--json") { Description = "Write the result (syncBytes, launchBytes, rounds) as JSON to this file" };
        var cmd = new Command("simulate", "Replay a dirty-page trace through the predictor and window over a modelled link") { trace, link, policy, warmup, duration, json };
        cmd.SetAction(r =>
        {
            var options = new SimulationOptions
            {
                Policy = SyncPolicyNames.Parse(r.GetValue(policy)!),
                LinkBitsPerSecond = LinkRate.Parse(r.GetValue(link)!),
                WarmUp = Units.ParseDuration(r.GetValue(warmup)!),
                Duration = r.GetValue(duration) is { } d ? Units.ParseDuration(d) : null,
            };
            using var source = TraceReplaySource.Open(r.GetValue(trace)!);
            SimulationResult result = Simulator.Run(source, options);
            Console.WriteLine($"{result.Workload}: policy {result.Policy}, {result.Rounds.Count} rounds over {result.DurationMs / 1000:0.0} s at {options.LinkBitsPerSecond / 1e6:0} Mbit/s");
            Console.WriteLine($"  sync bytes {Units.FormatBytes(result.SyncBytes)} (warm-up {Units.FormatBytes(result.WarmUpBytes)}, initial copy {Units.FormatBytes(result.InitialCopyBytes)}), " +
                              $"remaining at launch {Units.FormatBytes(result.LaunchBytes)} (budget {Units.FormatBytes(result.LaunchBudgetBytes)}, {(result.LaunchWithinBudget ? "within" : "OVER")})");
            if (r.GetValue(json) is { } path)
            {
                File.WriteAllText(path, result.ToJson(indented: true));
                Console.WriteLine($"  wrote {path}");
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
