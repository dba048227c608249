using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;

namespace KvmPresync.Trace;

/// <summary>Inputs of <see cref="Simulator.Run"/>: the policy, the modelled link and the engine's tuning.</summary>
public sealed record SimulationOptions
{
    public SyncPolicy Policy { get; init; } = SyncPolicy.Predict;

    public double LinkBitsPerSecond { get; init; } = 1e9;

    public TimeSpan BaseRtt { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// Time run before the measured sync period: the initial copy and the predictor's learning happen here, and the
    /// bytes sent are reported as warm-up bytes, not sync bytes. Default 0 (the initial copy counts as sync).
    /// </summary>
    public TimeSpan WarmUp { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// The measured sync period after <see cref="WarmUp"/>; rounds run at t = 0, I, 2I, ... while t ≤ WarmUp + Duration.
    /// Null = until the source is exhausted.
    /// </summary>
    public TimeSpan? Duration { get; init; }

    /// <summary>Round length for none/predict/oracle; the starting interval for predict+slowstart (clamped to the window's min..max).</summary>
    public TimeSpan RoundInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Launch-time target: held-back bytes may not exceed link rate × this.</summary>
    public TimeSpan LaunchTarget { get; init; } = LaunchBudget.DefaultTarget;

    /// <summary>Wire header per page (a zero page costs only this).</summary>
    public int HeaderBytesPerPage { get; init; } = 16;

    /// <summary>Whether the whole memory is pending at t = 0 (the receiver holds nothing yet).</summary>
    public bool InitialCopy { get; init; } = true;

    /// <summary>Pages known to be non-zero at t = 0 (null = all). Not modified; pages become non-zero when dirtied.</summary>
    public DirtyBitmap? NonZeroPages { get; init; }

    public ChangePredictorOptions Predictor { get; init; } = new();

    public HoldBackOptions HoldBack { get; init; } = new();

    public SyncWindowOptions Window { get; init; } = new();

    /// <summary>After the sync period, simulate the launch: final live rounds under <see cref="Convergence"/>, then the paused delta.</summary>
    public bool SimulateLaunch { get; init; } = true;

    /// <summary>The convergence policy after launch — the same object type the live sender takes.</summary>
    public IConvergencePolicy Convergence { get; init; } = new DowntimeTargetConvergence();

    /// <summary>The engine's options for this simulation: the same policy step the live sender runs.</summary>
    public SyncEngineOptions ToEngineOptions() => new()
    {
        Policy = Policy,
        LinkBitsPerSecond = LinkBitsPerSecond,
        LaunchTarget = LaunchTarget,
        RoundInterval = RoundInterval,
        HeaderBytesPerPage = HeaderBytesPerPage,
        InitiallyPending = InitialCopy,
        Predictor = Predictor,
        HoldBack = HoldBack,
        Window = Window,
        Convergence = Convergence,
    };

    public void Validate()
    {
        if (Policy is not (SyncPolicy.None or SyncPolicy.Predict or SyncPolicy.PredictSlowStart or SyncPolicy.SlowStart or SyncPolicy.Oracle))
            throw new ArgumentOutOfRangeException(nameof(Policy), Policy, "unknown sync policy");
        if (!(LinkBitsPerSecond > 0) || double.IsInfinity(LinkBitsPerSecond))
            throw new ArgumentOutOfRangeException(nameof(LinkBitsPerSecond), LinkBitsPerSecond, "link rate must be a positive, finite number of bits per second");
        if (BaseRtt < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(BaseRtt), BaseRtt, "base RTT must not be negative");
        if (WarmUp < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(WarmUp), WarmUp, "warm-up must not be negative");
        if (Duration is { } d && d < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Duration), d, "duration must not be negative");
        if (RoundInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(RoundInterval), RoundInterval, "round interval must be positive");
        if (LaunchTarget < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(LaunchTarget), LaunchTarget, "launch target must not be negative");
        if (HeaderBytesPerPage < 0) throw new ArgumentOutOfRangeException(nameof(HeaderBytesPerPage), HeaderBytesPerPage, "header bytes must not be negative");
        Predictor.Validate();
        HoldBack.Validate();
        Window.Validate();
    }
}
