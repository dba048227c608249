using System.Text.Json;
using System.Text.Json.Serialization;
using KvmPresync.Core;
using KvmPresync.Engine;

namespace KvmPresync.Trace;

/// <summary>What a simulated sync period cost under one policy, with per-round detail. Serializes to camelCase JSON.</summary>
public sealed record SimulationResult
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    private static readonly JsonSerializerOptions JsonIndented = new(Json) { WriteIndented = true };

    public required string Workload { get; init; }

    /// <summary>Policy name as the CLI spells it (none, predict, predict+slowstart).</summary>
    public required string Policy { get; init; }

    public required long PageCount { get; init; }

    public required int PageSize { get; init; }

    public required double LinkBitsPerSecond { get; init; }

    /// <summary>Time of the last round, ms.</summary>
    public required double DurationMs { get; init; }

    /// <summary>Bytes held-back pages may add to launch (link rate × launch target).</summary>
    public required long LaunchBudgetBytes { get; init; }

    /// <summary>Wire bytes of the initial full copy (all pages pending at t = 0; zero pages cost a header).</summary>
    public required long InitialCopyBytes { get; init; }

    /// <summary>Start of the measured sync period (the warm-up length), ms.</summary>
    public required double MeasuredFromMs { get; init; }

    /// <summary>Wire bytes sent during the warm-up (rounds before <see cref="MeasuredFromMs"/>).</summary>
    public required long WarmUpBytes { get; init; }

    /// <summary>Wire bytes sent during the measured sync period (includes the initial copy unless a warm-up absorbed it).</summary>
    public required long SyncBytes { get; init; }

    public required long SyncPages { get; init; }

    /// <summary>Wire bytes still pending after the last round (held back + deferred): what launch would move.</summary>
    public required long LaunchBytes { get; init; }

    public required long LaunchPages { get; init; }

    /// <summary>Held-back bytes after the last round (always ≤ the launch budget).</summary>
    public required long LaunchHeldBytes { get; init; }

    public bool LaunchWithinBudget => LaunchBytes <= LaunchBudgetBytes;

    /// <summary>Live rounds after launch before the convergence policy paused (0 without a simulated launch).</summary>
    public int FinalLiveRounds { get; init; }

    /// <summary>Wire bytes of the final live rounds.</summary>
    public long FinalLiveBytes { get; init; }

    /// <summary>Wire bytes sent with the guest paused (the final delta, vCPU state excluded).</summary>
    public long PausedDeltaBytes { get; init; }

    public long PausedDeltaPages { get; init; }

    /// <summary>The convergence policy gave up (the source would keep running).</summary>
    public bool GaveUp { get; init; }

    public required IReadOnlyList<RoundRecord> Rounds { get; init; }

    /// <summary>The rounds before launch (<see cref="RoundPhase.Sync"/>).</summary>
    [JsonIgnore]
    public IReadOnlyList<RoundRecord> SyncRounds => Rounds.Where(r => r.Phase == RoundPhase.Sync).ToList();

    public string ToJson(bool indented = false) => JsonSerializer.Serialize(this, indented ? JsonIndented : Json);

    public static SimulationResult FromJson(string json) =>
        JsonSerializer.Deserialize<SimulationResult>(json, Json) ?? throw new JsonException("simulation result JSON is null");
}
