using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;

namespace KvmPresync.Trace;

/// <summary>
/// Replays a dirty-page source through <see cref="SyncEngine"/> — the same policy step the live sender runs (pending
/// set, <see cref="ChangePredictor"/>, <see cref="HoldBackPlanner"/> with its <see cref="LaunchBudget"/>,
/// <see cref="SyncWindow"/>) — over a modelled link, and reports the bytes each policy sends during the sync period
/// and would leave for launch.
/// </summary>
/// <remarks>
/// Each round at time t: advance the source to t and harvest into a fresh bitmap → <see cref="SyncEngine.Absorb"/>
/// (pending |= harvest, predictor update) → <see cref="SyncEngine.Plan"/> (hold back within budget, send lowest ranks
/// first within the window) → <see cref="SyncEngine.MarkSent"/> (pending &amp;= ~send) → the link queues the sent
/// bytes and drains for one interval → <see cref="SyncEngine.Feedback"/> (predict+slowstart: RTT, acked bytes, dirty
/// bytes, deferred bytes) → next round at t + interval. Pages are assumed to hold distinct content whenever dirtied
/// (no content hashing), so every send costs header + page size, except pages known to be zero before they were first
/// dirtied (header only).
/// </remarks>
public static class Simulator
{
    /// <param name="source">The writes to replay.</param>
    /// <param name="options">Policy, link, periods (null = defaults).</param>
    /// <param name="oracle">The source's future writes, required by <see cref="SyncPolicy.Oracle"/> and only by it
    /// (<see cref="FutureWrites.For"/> with the same options).</param>
    public static SimulationResult Run(IReplayDirtyPageSource source, SimulationOptions? options = null, INextWriteOracle? oracle = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        options ??= new SimulationOptions();
        options.Validate();
        long pageCount = source.PageCount;
        if (options.NonZeroPages is { } nz && nz.PageCount != pageCount)
            throw new ArgumentException($"non-zero page map covers {nz.PageCount} pages, source {pageCount}", nameof(options));
        if (options.Policy == SyncPolicy.Oracle && oracle is null)
            throw new ArgumentException("simulating policy oracle needs the source's future writes: pass FutureWrites.For(open, options) as the oracle " +
                                        "(PolicyComparison does this)", nameof(oracle));

        var engine = new SyncEngine(pageCount, source.PageSize, options.ToEngineOptions(), options.NonZeroPages, oracle);
        var harvest = new DirtyBitmap(pageCount);
        var send = new DirtyBitmap(pageCount);
        var link = new SimulatedLink(options.LinkBitsPerSecond, options.BaseRtt);
        long initialCopyBytes = options.InitialCopy ? engine.PendingBytes() : 0;

        var rounds = new List<RoundRecord>();
        long syncBytes = 0, syncPages = 0, warmUpBytes = 0;
        TimeSpan? end = options.Duration is { } length ? options.WarmUp + length : null;
        RoundPlan plan = default;
        TimeSpan t = source.Now;
        for (long round = 0; ; round++)
        {
            source.AdvanceTo(t);
            harvest.Clear();
            DirtyHarvest h = source.Harvest(harvest);

            TimeSpan interval = engine.Interval;
            long windowBytes = engine.Window?.Window ?? link.Capacity(interval);
            plan = engine.PlanSyncRound(harvest, h, send, windowBytes);
            engine.MarkSent(send);
            link.Send(plan.SendBytes);
            if (t < options.WarmUp)
            {
                warmUpBytes += plan.SendBytes;
            }
            else
            {
                syncBytes += plan.SendBytes;
                syncPages += plan.SendPages;
            }

            long acked = link.Advance(interval);
            TimeSpan rtt = link.Rtt;
            WindowDecision? decision = engine.Feedback(new RoundFeedback
            {
                Elapsed = interval,
                Rtt = rtt,
                BytesSent = plan.SendBytes,
                BytesAcked = acked,
                DirtyBytes = h.DirtyPages * engine.Cost.FullPageBytes,
                DeferredBytes = plan.DeferredBytes,
            });

            rounds.Add(Record(round, RoundPhase.Sync, t, h.DirtyPages, plan, windowBytes, interval, engine) with
            {
                RttMs = rtt.TotalMilliseconds,
                AckedBytes = acked,
                WindowReason = decision?.Reason,
                IntervalReason = decision?.IntervalReason,
            });

            bool last = end is { } e ? t + interval > e : source.Exhausted;
            if (last) break;
            t += interval;
        }
        TimeSpan syncEnd = t;
        LaunchOutcome launch = options.SimulateLaunch ? Launch(source, engine, link, harvest, send, rounds, t + engine.Interval, t) : default;

        return new SimulationResult
        {
            Workload = source.Workload,
            Policy = options.Policy.Name(),
            PageCount = pageCount,
            PageSize = source.PageSize,
            LinkBitsPerSecond = options.LinkBitsPerSecond,
            DurationMs = syncEnd.TotalMilliseconds,
            LaunchBudgetBytes = engine.Budget.Bytes,
            MeasuredFromMs = options.WarmUp.TotalMilliseconds,
            WarmUpBytes = warmUpBytes,
            InitialCopyBytes = initialCopyBytes,
            SyncBytes = syncBytes,
            SyncPages = syncPages,
            LaunchBytes = plan.RemainingBytes,
            LaunchPages = plan.RemainingPages,
            LaunchHeldBytes = plan.HeldBytes,
            FinalLiveRounds = launch.LiveRounds,
            FinalLiveBytes = launch.LiveBytes,
            PausedDeltaBytes = launch.PausedBytes,
            PausedDeltaPages = launch.PausedPages,
            GaveUp = launch.GaveUp,
            Rounds = rounds,
        };
    }

    private readonly record struct LaunchOutcome(int LiveRounds, long LiveBytes, long PausedBytes, long PausedPages, bool GaveUp);

    /// <summary>
    /// Launch at <paramref name="launchAt"/>: final live rounds back to back, each harvested when the link has moved the
    /// previous one, until the engine's convergence policy (through <see cref="LaunchConvergence"/>, as the live sender
    /// asks it) pauses or gives up; then the paused delta.
    /// </summary>
    private static LaunchOutcome Launch(IReplayDirtyPageSource source, SyncEngine engine, SimulatedLink link, DirtyBitmap harvest,
        DirtyBitmap send, List<RoundRecord> rounds, TimeSpan launchAt, TimeSpan lastSyncHarvest)
    {
        var convergence = new LaunchConvergence(engine, lastSyncHarvest);
        long round = rounds.Count;
        long liveBytes = 0;
        TimeSpan t = launchAt;
        while (true)
        {
            source.AdvanceTo(t);
            harvest.Clear();
            DirtyHarvest h = source.Harvest(harvest);
            ConvergenceDecision decision = convergence.AfterHarvest(harvest, h, link.Rtt);
            if (decision.Action != ConvergenceAction.ContinueLive)
            {
                if (decision.Action == ConvergenceAction.GiveUp)
                {
                    rounds.Add(Record(round, RoundPhase.FinalLive, t, h.DirtyPages, default, 0, TimeSpan.Zero, engine) with { Convergence = decision });
                    return new LaunchOutcome(convergence.LiveRounds, liveBytes, 0, 0, GaveUp: true);
                }
                // paused: nothing is dirtied between the decision and the pause, so the paused harvest finds nothing new
                RoundPlan paused = engine.PlanFinalRound(send);
                engine.MarkSent(send);
                link.Send(paused.SendBytes);
                rounds.Add(Record(round, RoundPhase.Paused, t, h.DirtyPages, paused, paused.SendBytes, TimeSpan.Zero, engine) with { Convergence = decision });
                return new LaunchOutcome(convergence.LiveRounds, liveBytes, paused.SendBytes, paused.SendPages, GaveUp: false);
            }
            RoundPlan plan = engine.PlanFinalRound(send);
            engine.MarkSent(send);
            link.Send(plan.SendBytes);
            liveBytes += plan.SendBytes;
            rounds.Add(Record(round++, RoundPhase.FinalLive, t, h.DirtyPages, plan, plan.SendBytes, TimeSpan.Zero, engine) with { Convergence = decision });
            TimeSpan transfer = link.BaseRtt + TimeSpan.FromSeconds(link.Backlog / link.BytesPerSecond);
            link.Advance(transfer);
            t += transfer > TimeSpan.Zero ? transfer : TimeSpan.FromMilliseconds(1);
        }
    }

    private static RoundRecord Record(long round, RoundPhase phase, TimeSpan t, long dirty, RoundPlan plan, long windowBytes, TimeSpan interval, SyncEngine engine) =>
        RoundRecord.FromPlan(round, phase, t.TotalMilliseconds, dirty, plan, windowBytes, interval.TotalMilliseconds, engine.Predictor?.ActivePages ?? 0);

    /// <summary>Scores the predictor against the two baselines over <paramref name="source"/>, one round per <paramref name="roundInterval"/>.</summary>
    public static PredictionReport EvaluatePredictor(
        IReplayDirtyPageSource source,
        TimeSpan roundInterval,
        TimeSpan? duration = null,
        ChangePredictorOptions? predictorOptions = null,
        double threshold = 0.5)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (roundInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(roundInterval), roundInterval, "round interval must be positive");
        var scorer = new PredictionScorer(new ChangePredictor(source.PageCount, predictorOptions), threshold);
        var harvest = new DirtyBitmap(source.PageCount);
        TimeSpan t = source.Now;
        while (true)
        {
            t += roundInterval;
            if (duration is { } d && t > d) break;
            source.AdvanceTo(t);
            harvest.Clear();
            source.Harvest(harvest);
            scorer.Observe(harvest);
            if (duration is null && source.Exhausted) break;
        }
        return scorer.Report();
    }
}
