using KvmPresync.Core;
using KvmPresync.Memory;

namespace KvmPresync.Engine.Convergence;

/// <summary>
/// The post-launch round step shared by the live sender and the simulator: after each harvest following launch it
/// absorbs the harvest into the engine, builds the <see cref="ConvergenceInput"/> from the engine and the harvest
/// clock, and asks the engine's <see cref="IConvergencePolicy"/>. Given the same harvests, both callers therefore
/// take the same decisions. One instance per launch.
/// </summary>
public sealed class LaunchConvergence
{
    private readonly SyncEngine _engine;
    private TimeSpan _previousHarvest;
    private TimeSpan? _firstHarvest;
    private long? _previousPending;
    private TimeSpan? _waitingForQuietSince;

    /// <param name="engine">The run's engine (its pending set, cost model, options and convergence policy).</param>
    /// <param name="lastSyncHarvest">Harvest-clock time of the last harvest before launch (the dirty rate's first interval).</param>
    public LaunchConvergence(SyncEngine engine, TimeSpan lastSyncHarvest)
    {
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        _previousHarvest = lastSyncHarvest;
    }

    /// <summary>Final live rounds sent so far.</summary>
    public int LiveRounds { get; private set; }

    /// <summary>The inputs of the last decision.</summary>
    public ConvergenceInput LastInput { get; private set; }

    /// <summary>Absorbs <paramref name="harvest"/> (reported as <paramref name="harvested"/>) and decides what comes next.</summary>
    /// <param name="bursts">When the guest's bursts of writes come, if timed (<see cref="BurstClock"/>).</param>
    public ConvergenceDecision AfterHarvest(DirtyBitmap harvest, DirtyHarvest harvested, TimeSpan? rtt = null, BurstForecast? bursts = null)
    {
        _engine.AbsorbAfterLaunch(harvest);
        _firstHarvest ??= harvested.Time;
        TimeSpan interval = harvested.Time - _previousHarvest;
        DirtyWorkingSet workingSet = _engine.WorkingSet;
        var input = new ConvergenceInput
        {
            PendingBytes = _engine.PendingBytes(),
            PreviousPendingBytes = _previousPending,
            DirtyBytesPerSecond = interval > TimeSpan.Zero ? harvested.DirtyPages * _engine.Cost.FullPageBytes / interval.TotalSeconds : 0,
            LinkBitsPerSecond = _engine.EffectiveLinkBitsPerSecond,
            LiveTransferBitsPerSecond = _engine.LiveTransferBitsPerSecond,
            Rtt = rtt,
            MeanDirtyBytesPerSecond = _engine.DirtyRate.MeanBytesPerSecond,
            WorkingSet = workingSet, // read only where it has its short point (ConvergenceInput.ExpectedDirtyBytes)
            Bursts = BurstTimedWrites.Of(bursts, _engine.Cost.FullPageBytes, workingSet),
            Now = harvested.Time,
            WaitingForQuietFor = harvested.Time - _waitingForQuietSince,
            SinceLaunch = harvested.Time - _firstHarvest.Value,
            LaunchTarget = _engine.Options.LaunchTarget,
            LiveRounds = LiveRounds,
        };
        ConvergenceDecision decision = _engine.Convergence.Decide(input);
        if (decision.Reason == ConvergenceReason.WaitingForQuiet) _waitingForQuietSince ??= harvested.Time;
        if (decision.Action == ConvergenceAction.Invalid)
            throw new InvalidOperationException($"the convergence policy {_engine.Convergence.GetType().Name} returned no action");
        if (decision.Action == ConvergenceAction.ContinueLive) LiveRounds++;
        _previousPending = input.PendingBytes;
        _previousHarvest = harvested.Time;
        LastInput = input;
        return decision;
    }
}
