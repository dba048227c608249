using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;

namespace KvmPresync.Trace;

/// <summary>Inputs of <see cref="Simulator.Run"/>: the policy, the modelled link and the engine's tuning.</summary>
public sealed record SimulationOptions
{
    public SyncPolicy Policy { get; init => field = OptionGuard.Require(value, Enum.IsDefined(value), nameof(SimulationOptions), "must be a defined SyncPolicy"); } = SyncPolicy.Predict;

    public double LinkBitsPerSecond { get; init => field = OptionGuard.Require(value, value > 0 && !double.IsInfinity(value), nameof(SimulationOptions), "must be a positive, finite number of bits per second"); } = 1e9;

    public TimeSpan BaseRtt { get; init => field = OptionGuard.NotNegative(value, nameof(SimulationOptions)); } = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// Time run before the measured sync period: the initial copy and the predictor's learning happen here, and the
    /// bytes sent are reported as warm-up bytes, not sync bytes. Default 0 (the initial copy counts as sync).
    /// </summary>
    public TimeSpan WarmUp { get; init => field = OptionGuard.NotNegative(value, nameof(SimulationOptions)); } = TimeSpan.Zero;

    /// <summary>
    /// The measured sync period after <see cref="WarmUp"/>; rounds run at t = 0, I, 2I, ... while t ≤ WarmUp + Duration.
    /// Null = until the source is exhausted.
    /// </summary>
    public TimeSpan? Duration { get; init => field = OptionGuard.Require(value, value is not { } d || d >= TimeSpan.Zero, nameof(SimulationOptions), "must not be negative, or null (the whole trace)"); }

    /// <summary>Round length for none/predict/oracle; the starting interval for predict+slowstart (clamped to the window's min..max).</summary>
    public TimeSpan RoundInterval { get; init => field = OptionGuard.Positive(value, nameof(SimulationOptions)); } = TimeSpan.FromMilliseconds(100);

    /// <summary>Launch-time target: held-back bytes may not exceed link rate × this.</summary>
    public TimeSpan LaunchTarget { get; init => field = OptionGuard.NotNegative(value, nameof(SimulationOptions)); } = LaunchBudget.DefaultTarget;

    /// <summary>Wire header per page (a zero page costs only this).</summary>
    public int HeaderBytesPerPage { get; init => field = OptionGuard.Require(value, value >= 0, nameof(SimulationOptions), "must not be negative"); } = 16;

    /// <summary>Whether the whole memory is pending at t = 0 (the receiver holds nothing yet).</summary>
    public bool InitialCopy { get; init; } = true;

    /// <summary>Pages known to be non-zero at t = 0 (null = all). Not modified; pages become non-zero when dirtied.</summary>
    public DirtyBitmap? NonZeroPages { get; init; }

    public ChangePredictorOptions Predictor { get; init => field = OptionGuard.NotNull(value, nameof(SimulationOptions)); } = new();

    public HoldBackOptions HoldBack { get; init => field = OptionGuard.NotNull(value, nameof(SimulationOptions)); } = new();

    public SyncWindowOptions Window { get; init => field = OptionGuard.NotNull(value, nameof(SimulationOptions)); } = new();

    /// <summary>After the sync period, simulate the launch: final live rounds under <see cref="Convergence"/>, then the paused delta.</summary>
    public bool SimulateLaunch { get; init; } = true;

    /// <summary>The convergence policy after launch — the same object type the live sender takes.</summary>
    public IConvergencePolicy Convergence { get; init => field = OptionGuard.NotNull(value, nameof(SimulationOptions)); } = new DowntimeTargetConvergence();

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

    /// <summary>Checks across options (each option alone is checked when it is set): the window's bounds.</summary>
    public void Validate()
    {
        Window.Validate();
    }
}
