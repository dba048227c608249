using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using KvmPresync.Engine;
using KvmPresync.Trace;
using KvmPresync.Wire;

namespace KvmPresync.Cli.Commands;

/// <summary>
/// <c>kvmpresync simulate</c>: replays recorded traces through the real engine policies over a modelled link and prints,
/// per trace, each policy's bytes, its reduction against none and its fraction of the oracle's reduction
/// (<see cref="PolicyComparison"/>).
/// </summary>
internal static class SimulateCommand
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public static Command Create()
    {
        var trace = new Option<string[]>("--trace", "-t") { Description = "Trace file recorded by 'kvmpresync trace record'; repeat for several traces (a table each)", Required = true };
        var link = new Option<string>("--link-rate") { Description = "Modelled link rate, e.g. 1gbit, 100mbit, 10MB/s", DefaultValueFactory = _ => "1gbit" };
        var policy = new Option<string>("--policy", "-p")
        {
            Description = "Policies to compare, a comma list or all (= none,predict,predict+slowstart,oracle); none always runs, it is the baseline: " +
                          "none (every dirty page each round, as fast as the link allows) | slowstart (slow-start window, no prediction) | " +
                          "predict (the predictor holds back pages about to change again) | predict+slowstart (both) | " +
                          "oracle (future-knowledge bound: holds the pages next written soonest, read from the trace; same budget and window as predict)",
            DefaultValueFactory = _ => "all",
        };
        var warmup = new Option<string>("--warmup") { Description = "Replay this long first (initial copy, learning) outside the measured period", DefaultValueFactory = _ => "10s" };
        var duration = new Option<string>("--duration") { Description = "Measured sync period after the warm-up; 'rest' = to the end of the trace", DefaultValueFactory = _ => "50s" };
        var launchTarget = MigrationOptions.LaunchTarget();
        var json = new Option<string?>("--json") { Description = "Write every trace's table, saturation test and per-policy results (rounds included) as JSON to this file" };
        var cmd = new Command("simulate", "Replay dirty-page traces through the policies over a modelled link: bytes, reduction vs none, fraction of the oracle's reduction")
        {
            trace, link, policy, warmup, duration, launchTarget, json,
        };
        cmd.SetAction(r =>
        {
            IReadOnlyList<SyncPolicy> policies = PolicyList.Parse(r.GetValue(policy)!);
            string durationText = r.GetValue(duration)!;
            var options = new SimulationOptions
            {
                LinkBitsPerSecond = LinkRate.Parse(r.GetValue(link)!),
                WarmUp = Units.ParseDuration(r.GetValue(warmup)!, warmup.Name),
                LaunchTarget = MigrationOptions.ParseLaunchTarget(r.GetValue(launchTarget)!),
                Duration = durationText.Trim().Equals("rest", StringComparison.OrdinalIgnoreCase) ? null : Units.ParseDuration(durationText, duration.Name),
            };
            var results = new List<PolicyComparisonResult>();
            foreach (string path in r.GetValue(trace)!)
            {
                TraceCommands.RequireTraceFile(path);
                PolicyComparisonResult result = PolicyComparison.Run(() => TraceReplaySource.Open(path), policies, options, path);
                if (results.Count > 0) Console.WriteLine();
                ComparisonTable.Write(Console.Out, result);
                results.Add(result);
            }
            if (r.GetValue(json) is { } file)
            {
                File.WriteAllText(file, JsonSerializer.Serialize(new { traces = results }, Json));
                Console.WriteLine($"wrote {file}");
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
