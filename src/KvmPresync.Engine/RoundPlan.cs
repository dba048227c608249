using KvmPresync.Core;
namespace KvmPresync.Engine;

/// <summary>What <see cref="HoldBackPlanner.Plan"/> decided for one round (pages and wire bytes).</summary>
public readonly record struct RoundPlan(
    long PendingPages,
    long PendingBytes,
    long HeldPages,
    long HeldBytes,
    long SendPages,
    long SendBytes,
    long DeferredPages,
    long DeferredBytes)
{
    /// <summary>Pages still pending after the planned sends: held back plus deferred by the window.</summary>
    public long RemainingPages => HeldPages + DeferredPages;

    /// <summary>Wire bytes still pending after the planned sends.</summary>
    public long RemainingBytes => HeldBytes + DeferredBytes;
}
