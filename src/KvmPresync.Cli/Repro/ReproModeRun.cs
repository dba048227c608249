using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;

namespace KvmPresync.Cli.Repro;

/// <summary>One migration of one workload in one mode, as the repro harness measured it.</summary>
public sealed record ReproModeRun
{
    public required string Workload { get; init; }
    /// <summary>precopy | slowstart | predict+slowstart: classic pre-copy, or the sync policy run before launch.</summary>
    public required string Mode { get; init; }
    public required int Run { get; init; }
    public required MigrationResult Result { get; init; }
    /// <summary>Guest progress units per second during the sync period (before launch).</summary>
    public double ProgressRateDuringSync { get; init; }
}
