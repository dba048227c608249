using BenchmarkDotNet.Attributes;
using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;

namespace KvmPresync.Bench;

/// <summary>
/// Cost of one sync round of the change predictor (update) and of the hold-back planner, for a 256 MiB and a 64 GiB
/// guest (4 KiB pages) with realistic sparse dirtying: ~1% of pages per round, clustered — half a fixed hot set of
/// short runs rewritten every round, half fresh runs at random places each round. Targets: update ≤ 0.5 ms at
/// 65,536 pages and ≤ 100 ms at 16 Mi pages. Baseline: OR-ing the round's harvest into the pending set.
/// </summary>
[MemoryDiagnoser]
public class PredictorBenchmarks
{
    private const int Rounds = 16;

    [Params(65_536L, 16_777_216L)]
    public long PageCount { get; set; }

    /// <summary>The per-page rewrite interval (ChangePredictorOptions.UseRewriteInterval) off and on, side by side.</summary>
    [Params(false, true)]
    public bool RewriteInterval { get; set; }

    private DirtyBitmap[] _rounds = [];
    private DirtyBitmap _pending = null!;
    private DirtyBitmap _send = null!;
    private DirtyBitmap _held = null!;
    private ChangePredictor _predictor = null!;
    private HoldBackPlanner _planner = null!;
    private PageCost _cost = null!;
    private LaunchBudget _budget;
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        long target = PageCount / 100; // 1% per round
        var hot = new List<(long First, int Length)>();
        for (long n = 0; n < target / 2;)
        {
            int len = rng.Next(1, 17);
            hot.Add((rng.NextInt64(PageCount - len), len));
            n += len;
        }
        _rounds = new DirtyBitmap[Rounds];
        for (int r = 0; r < Rounds; r++)
        {
            var b = new DirtyBitmap(PageCount);
            foreach (var (first, len) in hot) SetRun(b, first, len);
            for (long n = 0; n < target / 2;)
            {
                int len = rng.Next(1, 17);
                SetRun(b, rng.NextInt64(PageCount - len), len);
                n += len;
            }
            _rounds[r] = b;
        }
        _predictor = new ChangePredictor(PageCount, new ChangePredictorOptions { UseRewriteInterval = RewriteInterval });
        for (int r = 0; r < 2 * Rounds; r++) _predictor.Update(_rounds[r % Rounds]); // warm: histories full, tables learnt
        _pending = new DirtyBitmap(PageCount);
        _pending.CopyFrom(_rounds[0]);
        _send = new DirtyBitmap(PageCount);
        _held = new DirtyBitmap(PageCount);
        _planner = new HoldBackPlanner();
        _cost = new PageCost(4096, 16);
        _budget = LaunchBudget.FromLink(1e9, LaunchBudget.DefaultTarget);
    }

    [Benchmark(Baseline = true)]
    public void MergeHarvestIntoPending() => _pending.Or(_rounds[_next++ & (Rounds - 1)]);

    [Benchmark]
    public long PredictorUpdate()
    {
        _predictor.Update(_rounds[_next++ & (Rounds - 1)]);
        return _predictor.ActivePages;
    }

    [Benchmark]
    public RoundPlan PlanRound() => _planner.Plan(_pending, _predictor, _budget, 1_250_000_000 / 80, _cost, _send, _held);

    private static void SetRun(DirtyBitmap b, long first, int length)
    {
        for (long p = first; p < first + length; p++) b.Set(p);
    }
}
