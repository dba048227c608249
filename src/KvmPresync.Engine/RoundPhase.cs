using System.Text.Json.Serialization;
namespace KvmPresync.Engine;

/// <summary>Which part of a migration a round belongs to.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<RoundPhase>))]
public enum RoundPhase
{
    Invalid = 0,

    /// <summary>Pre-synchronization before launch: hold-back and the window apply.</summary>
    Sync = 1,

    /// <summary>After launch, the guest still running: everything pending is due; the convergence policy decides when to pause.</summary>
    FinalLive = 2,

    /// <summary>The guest paused: the last harvest and everything still pending.</summary>
    Paused = 3,
}
