using KvmPresync.Core;
using KvmPresync.Engine.Convergence;
using KvmPresync.Memory;

namespace KvmPresync.Engine;

/// <summary>How a <see cref="SyncEngine"/> decides each round.</summary>
public sealed record SyncEngineOptions
{
    /// <summary>none = send every pending page (window = link capacity); predict = hold hot pages back within the launch budget; predict+slowstart = plus the adaptive window;
    /// oracle = as predict, ranked by future knowledge (needs an <see cref="INextWriteOracle"/>; simulation only).</summary>
    public SyncPolicy Policy { get; init => field = OptionGuard.Require(value, Enum.IsDefined(value), nameof(SyncEngineOptions), "must be a defined SyncPolicy"); } = SyncPolicy.PredictSlowStart;

    public double LinkBitsPerSecond { get; init => field = OptionGuard.Require(value, value > 0 && !double.IsInfinity(value), nameof(SyncEngineOptions), "must be a positive, finite number of bits per second"); } = 1e9;

    /// <summary>
    /// Launch-to-resume target: held-back pages must be movable within <see cref="LaunchBudget.HeldShare"/> of it at the link rate,
    /// and the convergence policy pauses the guest in time to meet it where it can.
    /// </summary>
    public TimeSpan LaunchTarget { get; init => field = OptionGuard.NotNegative(value, nameof(SyncEngineOptions)); } = LaunchBudget.DefaultTarget;

    /// <summary>Round interval when there is no adaptive window.</summary>
    public TimeSpan RoundInterval { get; init => field = OptionGuard.Positive(value, nameof(SyncEngineOptions)); } = TimeSpan.FromMilliseconds(100);

    /// <summary>Wire bytes per page beyond its payload (descriptor).</summary>
    public int HeaderBytesPerPage { get; init => field = OptionGuard.Require(value, value >= 0, nameof(SyncEngineOptions), "must not be negative"); } = 24;

    /// <summary>Whether every page starts pending (the receiver holds nothing yet). False: only harvested pages become pending.</summary>
    public bool InitiallyPending { get; init; } = true;

    public ChangePredictorOptions Predictor { get; init => field = OptionGuard.NotNull(value, nameof(SyncEngineOptions)); } = new();

    public HoldBackOptions HoldBack { get; init => field = OptionGuard.NotNull(value, nameof(SyncEngineOptions)); } = new();

    public SyncWindowOptions Window { get; init => field = OptionGuard.NotNull(value, nameof(SyncEngineOptions)); } = new();

    /// <summary>After launch: when to pause the guest and when to give up (<see cref="DowntimeTargetConvergence"/> by default).</summary>
    public IConvergencePolicy Convergence { get; init => field = OptionGuard.NotNull(value, nameof(SyncEngineOptions)); } = new DowntimeTargetConvergence();
}

/// <summary>
/// The per-round decisions of pre-synchronization, shared by the live sender and anything that replays
/// a trace: the pending set (a harvested page stays pending until <see cref="MarkSent"/>), the change
/// predictor, the hold-back planner with its launch budget, and the slow-start window.
/// </summary>
public sealed class SyncEngine
{
    private readonly HoldBackPlanner _planner;
    private readonly DirtyBitmap _held;
    private readonly DirtyBitmap? _nonZero;
    private readonly INextWriteOracle? _oracle;
    private long _harvests;

    /// <param name="pageCount">Pages of guest memory.</param>
    /// <param name="pageSize">Bytes per page.</param>
    /// <param name="options">Policy and tuning (null = defaults).</param>
    /// <param name="nonZeroPages">Pages known to hold non-zero content at the start (null = all); copied. A page known to
    /// be zero costs only its header until a harvest shows it dirtied (<see cref="Absorb"/>).</param>
    /// <param name="oracle">Future knowledge, required by <see cref="SyncPolicy.Oracle"/> and only by it: its round k is
    /// this engine's k-th harvest (<see cref="Absorb"/>), each <see cref="SyncEngineOptions.RoundInterval"/> long.</param>
    public SyncEngine(long pageCount, int pageSize, SyncEngineOptions? options = null, DirtyBitmap? nonZeroPages = null, INextWriteOracle? oracle = null)
    {
        Options = options ?? new SyncEngineOptions();
        if (Options.Policy == SyncPolicy.Oracle)
        {
            if (oracle is null)
                throw new ArgumentException("policy oracle needs the future writes of a whole trace (an INextWriteOracle): it is a bound for " +
                                            "'kvmpresync simulate' only — a live sender cannot know which pages the guest will write next", nameof(oracle));
            if (oracle.PageCount != pageCount)
                throw new ArgumentException($"oracle covers {oracle.PageCount} pages, memory {pageCount}", nameof(oracle));
            if (oracle.RoundInterval != Options.RoundInterval)
                throw new ArgumentException($"oracle counts rounds of {oracle.RoundInterval.TotalMilliseconds} ms, the engine runs rounds of {Options.RoundInterval.TotalMilliseconds} ms", nameof(oracle));
            _oracle = oracle;
        }
        else if (oracle is not null)
        {
            throw new ArgumentException($"an oracle is only used by policy oracle, not {Options.Policy.Name()}", nameof(oracle));
        }
        if (nonZeroPages is not null && nonZeroPages.PageCount != pageCount)
            throw new ArgumentException($"non-zero page map covers {nonZeroPages.PageCount} pages, memory {pageCount}", nameof(nonZeroPages));
        Pending = new DirtyBitmap(pageCount);
        if (Options.InitiallyPending) Pending.SetAll(); // the receiver holds nothing yet
        _held = new DirtyBitmap(pageCount);
        if (nonZeroPages is not null)
        {
            _nonZero = new DirtyBitmap(pageCount);
            _nonZero.CopyFrom(nonZeroPages);
        }
        Cost = new PageCost(pageSize, Options.HeaderBytesPerPage, _nonZero);
        DirtyRate = new DirtyRateMeter(Cost.FullPageBytes);
        Budget = LaunchBudget.ForTarget(Options.LinkBitsPerSecond, Options.LaunchTarget);
        _planner = new HoldBackPlanner(Options.HoldBack);
        Predictor = Options.Policy is SyncPolicy.None or SyncPolicy.SlowStart or SyncPolicy.Oracle ? null : new ChangePredictor(pageCount, Options.Predictor);
        if (Options.Policy is SyncPolicy.PredictSlowStart or SyncPolicy.SlowStart)
            Window = new SyncWindow(Options.Window with { InitialInterval = Clamp(Options.RoundInterval, Options.Window.MinInterval, Options.Window.MaxInterval) });
    }

    public SyncEngineOptions Options { get; }

    /// <summary>The convergence policy used after launch (<see cref="LaunchConvergence"/> asks it).</summary>
    public IConvergencePolicy Convergence => Options.Convergence;

    /// <summary>Pages the receiver does not have in their current content.</summary>
    public DirtyBitmap Pending { get; }

    public ChangePredictor? Predictor { get; }

    public SyncWindow? Window { get; }

    public LaunchBudget Budget { get; }

    /// <summary>
    /// How many times faster than the link rate page content moves (compression, as the sender measures it: raw seconds /
    /// expected seconds with the codec in use); 1 = raw. Scales the link rate the convergence policy is given after launch.
    /// </summary>
    public double PayloadSpeedup
    {
        get;
        set => field = double.IsFinite(value) && value >= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, "the payload speed-up must be a finite number ≥ 1 (1 = raw)");
    } = 1;

    /// <summary>The link rate, bits per second, scaled by <see cref="PayloadSpeedup"/>: what pending pages move at.</summary>
    public double EffectiveLinkBitsPerSecond => Options.LinkBitsPerSecond * PayloadSpeedup;

    /// <summary>
    /// The rate pending pages left the sender in the large sync rounds (the sender notes each round's send): below
    /// <see cref="EffectiveLinkBitsPerSecond"/> when the CPU, not the link, bounds a send with the guest running.
    /// </summary>
    public SendRateMeter SendRate { get; } = new();

    /// <summary>What pages move at while the guest runs, bits per second: <see cref="SendRate"/> where measured and lower, else the effective link rate.</summary>
    public double LiveTransferBitsPerSecond =>
        ConvergenceInput.LiveRate(SendRate.BytesPerSecond * 8, EffectiveLinkBitsPerSecond);

    public PageCost Cost { get; }

    /// <summary>The guest's dirty rate over the sync rounds (<see cref="PlanSyncRound(DirtyBitmap, in DirtyHarvest, DirtyBitmap, long?)"/> feeds it).</summary>
    public DirtyRateMeter DirtyRate { get; }

    /// <summary>
    /// The guest's working-set curve: <see cref="DirtyRate"/>'s, with the predictor's active pages as what the guest dirtied
    /// over its last <see cref="ChangePredictor.HistoryRounds"/> rounds (none without a predictor). What the readiness
    /// estimate and the convergence policy expect the guest to dirty while the launch's pages move.
    /// </summary>
    public DirtyWorkingSet WorkingSet
    {
        get
        {
            DirtyWorkingSet curve = DirtyRate.WorkingSet;
            if (Predictor is not { } predictor) return curve;
            long rounds = Math.Min(predictor.Rounds, ChangePredictor.HistoryRounds);
            return curve with { SetBytes = predictor.ActivePages * (double)Cost.FullPageBytes, SetWindow = curve.LongWindow * rounds };
        }
    }

    /// <summary>Pages held back by the last plan.</summary>
    public DirtyBitmap Held => _held;

    public TimeSpan Interval => Window?.Interval ?? Options.RoundInterval;

    /// <summary>Bytes the link can move in one interval.</summary>
    public long LinkCapacity(TimeSpan interval) => (long)(Options.LinkBitsPerSecond / 8 * interval.TotalSeconds);

    /// <summary>Merges a harvest into the pending set and teaches the predictor (dirtied pages are no longer known zero).</summary>
    public void Absorb(DirtyBitmap harvest)
    {
        Pending.Or(harvest);
        _nonZero?.Or(harvest);
        Predictor?.Update(harvest);
        _harvests++;
    }

    /// <summary>
    /// After launch: merges a harvest into the pending set without teaching the predictor. Nothing is held back from
    /// launch on (<see cref="PlanFinalRound"/>), so the predictor's update — O(pages written in its recent rounds) — would
    /// only lengthen the launch-to-resume, and in the paused phase the downtime.
    /// </summary>
    public void AbsorbAfterLaunch(DirtyBitmap harvest)
    {
        Pending.Or(harvest);
        _nonZero?.Or(harvest);
    }

    /// <summary>Wire bytes to send every pending page now (the initial copy when nothing has been sent yet).</summary>
    public long PendingBytes()
    {
        ReadOnlySpan<ulong> words = Pending.ReadOnlyWords;
        long bytes = 0;
        for (int w = 0; w < words.Length; w++)
            if (words[w] != 0) bytes += Cost.OfWord(w, words[w]);
        return bytes;
    }

    /// <summary>Chooses this round's pages into <paramref name="send"/> (cleared first).</summary>
    /// <param name="holdBack">False at launch: nothing may be held, everything pending is due.</param>
    public RoundPlan Plan(DirtyBitmap send, bool holdBack = true, long? windowBytes = null)
    {
        send.Clear();
        _held.Clear();
        long window = windowBytes ?? Window?.Window ?? LinkCapacity(Interval);
        if (holdBack && _oracle is not null) // round = index of the last harvest absorbed
            return _planner.Plan(Pending, new OracleRanking(_oracle, Math.Max(0, _harvests - 1)), Budget, window, Cost, send, _held);
        return _planner.Plan(Pending, holdBack ? Predictor : null, Budget, window, Cost, send, _held);
    }

    /// <summary>A sync round's step: absorb the harvest, then choose the round's pages into <paramref name="send"/>.</summary>
    public RoundPlan PlanSyncRound(DirtyBitmap harvest, DirtyBitmap send, long? windowBytes = null)
    {
        Absorb(harvest);
        return Plan(send, holdBack: true, windowBytes);
    }

    /// <summary>A sync round's step with the harvest's clock and count (<paramref name="harvested"/>), which also feed <see cref="DirtyRate"/>.</summary>
    public RoundPlan PlanSyncRound(DirtyBitmap harvest, in DirtyHarvest harvested, DirtyBitmap send, long? windowBytes = null)
    {
        long newlyPending = harvest.CountAndNot(Pending); // before the harvest joins the pending set
        Absorb(harvest);
        DirtyRate.Note(harvested, newlyPending);
        return Plan(send, holdBack: true, windowBytes);
    }

    /// <summary>After launch (live or paused): every pending page is due, nothing is held, no window applies.</summary>
    public RoundPlan PlanFinalRound(DirtyBitmap send) => Plan(send, holdBack: false, long.MaxValue);

    /// <summary>Pages whose content the receiver now holds: no longer pending.</summary>
    public void MarkSent(DirtyBitmap sent) => Pending.AndNot(sent);

    /// <summary>Feeds the round's network and guest signals to the window (no-op without one).</summary>
    public WindowDecision? Feedback(in RoundFeedback feedback) => Window?.OnRound(feedback);

    private static TimeSpan Clamp(TimeSpan v, TimeSpan lo, TimeSpan hi) => v < lo ? lo : v > hi ? hi : v;
}
