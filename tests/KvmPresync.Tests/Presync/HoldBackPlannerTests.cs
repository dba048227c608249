using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using static KvmPresync.Tests.Presync.PresyncTestSupport;

namespace KvmPresync.Tests.Presync;

public sealed class HoldBackPlannerTests
{
    private const int PageSize = 4096;
    private const int Header = 16;
    private const long Full = PageSize + Header;

    private static (RoundPlan Plan, DirtyBitmap Send, DirtyBitmap Held) Plan(
        DirtyBitmap pending, ChangePredictor? predictor, long budgetBytes, long window = long.MaxValue,
        HoldBackOptions? options = null, DirtyBitmap? nonZero = null)
    {
        var send = new DirtyBitmap(pending.PageCount);
        var held = new DirtyBitmap(pending.PageCount);
        var plan = new HoldBackPlanner(options).Plan(pending, predictor, new LaunchBudget(budgetBytes), window,
            new PageCost(PageSize, Header, nonZero), send, held);
        return (plan, send, held);
    }

    /// <summary>A predictor that has seen pages 0..99 dirty every round and 100..199 dirty every third round.</summary>
    private static ChangePredictor HotAndPeriodic(long pageCount = 1000)
    {
        var predictor = new ChangePredictor(pageCount);
        Feed(predictor, 60, r => Range(0, 100).Concat(Range(100, 100).Where(p => (p + r) % 3 == 0)));
        return predictor;
    }

    [Fact]
    public void Holds_back_an_always_dirty_page()
    {
        var predictor = new ChangePredictor(512);
        Feed(predictor, 20, _ => [42, 300]);
        var (plan, send, held) = Plan(Bitmap(512, 42, 300, 301), predictor, LaunchBudget.FromLink(1e9, LaunchBudget.DefaultTarget).Bytes);
        Assert.True(held[42] && held[300]);
        Assert.False(held[301]);
        Assert.True(send[301]);
        Assert.Equal(2, plan.HeldPages);
        Assert.Equal(1, plan.SendPages);
    }

    [Fact]
    public void Without_recency_fill_a_once_written_page_is_not_held()
    {
        var predictor = new ChangePredictor(4096);
        Feed(predictor, 100, r => Range(r * 4L, 4).Append(4000)); // a stream of once-written pages plus one hot page
        long justWritten = 99 * 4;
        var (plan, send, held) = Plan(Bitmap(4096, justWritten, 4000), predictor, 1_000_000,
            options: new HoldBackOptions { FillBudgetByRecency = false });
        Assert.False(held[justWritten]);
        Assert.True(send[justWritten]);
        Assert.True(held[4000]);
        Assert.Equal(1, plan.HeldPages);
    }

    [Fact]
    public void Leftover_budget_holds_once_written_pages_most_recent_first_after_the_predicted_ones()
    {
        var predictor = new ChangePredictor(4096);
        Feed(predictor, 100, r => Range(r * 4L, 4).Append(4000)); // a stream of once-written pages plus one hot page
        long justWritten = 99 * 4, older = 50 * 4, neverWritten = 4090;
        DirtyBitmap pending = Bitmap(4096, older, justWritten, 4000, neverWritten);

        // Room for two pages: the hot page (predicted), then the most recently written one.
        var (plan, send, held) = Plan(pending, predictor, 2 * Full);
        Assert.True(held[4000] && held[justWritten]);
        Assert.True(send[older] && send[neverWritten]);
        Assert.Equal(2, plan.HeldPages);

        // Ample room: every page written since the predictor started is held; one never written is not (no evidence).
        (plan, send, held) = Plan(pending, predictor, 1_000_000);
        Assert.True(held[4000] && held[justWritten] && held[older]);
        Assert.True(send[neverWritten]);
        Assert.Equal(3, plan.HeldPages);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 0)]
    [InlineData(Full, 1)]
    [InlineData(37 * Full, 37)]
    [InlineData(37 * Full + Full - 1, 37)]
    [InlineData(1000 * Full, 100)]
    public void Held_bytes_respect_the_launch_budget_exactly(long budget, long expectedHeld)
    {
        var predictor = new ChangePredictor(1000);
        Feed(predictor, 30, _ => Range(0, 100));
        var pending = Bitmap(1000, Range(0, 100).ToArray());
        var (plan, send, held) = Plan(pending, predictor, budget);
        Assert.Equal(expectedHeld, plan.HeldPages);
        Assert.Equal(expectedHeld * Full, plan.HeldBytes);
        Assert.True(plan.HeldBytes <= budget);
        Assert.Equal(expectedHeld, held.Count());
        Assert.Equal(100 - expectedHeld, send.Count());
    }

    [Fact]
    public void Highest_scores_are_held_first()
    {
        var predictor = HotAndPeriodic();
        var pending = Bitmap(1000, Range(0, 200).ToArray());
        // Room for 150 of the 200 candidates: exactly 150 held, and no page left unheld outranks a held one.
        var (plan, _, held) = Plan(pending, predictor, 150 * Full);
        Assert.Equal(150, plan.HeldPages);
        int minHeld = Range(0, 200).Where(p => held[p]).Min(p => predictor.SoonScore(p));
        int maxUnheld = Range(0, 200).Where(p => !held[p]).Max(p => predictor.SoonScore(p));
        Assert.True(minHeld >= maxUnheld, $"held down to {minHeld}, unheld up to {maxUnheld}");
        // The always-dirty pages are all among the held.
        for (long p = 0; p < 100; p++) Assert.True(held[p], $"hot page {p} not held");
    }

    [Fact]
    public void Window_sends_lowest_scores_first_and_defers_the_rest()
    {
        var predictor = HotAndPeriodic();
        // Pending: 200 scored pages + 300 never-dirtied pages (score 0); nothing held (budget 0).
        var pending = Bitmap(1000, Range(0, 200).Concat(Range(500, 300)).ToArray());
        var (plan, send, held) = Plan(pending, predictor, budgetBytes: 0, window: 350 * Full);
        Assert.Equal(0, plan.HeldPages);
        Assert.Equal(350, plan.SendPages);
        Assert.Equal(150, plan.DeferredPages);
        Assert.Equal(350 * Full, plan.SendBytes);
        for (long p = 500; p < 800; p++) Assert.True(send[p]); // cold pages first
        for (long p = 0; p < 100; p++) Assert.False(send[p]); // hot pages last
        Assert.True(held.IsEmpty());
    }

    [Fact]
    public void Without_a_predictor_nothing_is_held_and_the_window_fills_in_page_order()
    {
        var pending = Bitmap(300, Range(0, 300).ToArray());
        var (plan, send, held) = Plan(pending, null, budgetBytes: 1 << 30, window: 70 * Full + 5);
        Assert.Equal(0, plan.HeldPages);
        Assert.True(held.IsEmpty());
        Assert.Equal(70, plan.SendPages);
        for (long p = 0; p < 300; p++) Assert.Equal(p < 70, send[p]);
    }

    [Fact]
    public void Plan_partitions_pending_into_sent_held_and_deferred_without_touching_it()
    {
        var predictor = HotAndPeriodic(5000);
        var pending = new DirtyBitmap(5000);
        pending.SetAll();
        var before = new DirtyBitmap(5000);
        before.CopyFrom(pending);
        var (plan, send, held) = Plan(pending, predictor, 120 * Full, window: 2000 * Full);
        Assert.Equal(before.ReadOnlyWords.ToArray(), pending.ReadOnlyWords.ToArray());
        var both = new DirtyBitmap(5000);
        both.CopyFrom(send);
        both.AndNot(held);
        Assert.Equal(send.Count(), both.Count()); // disjoint
        Assert.Equal(plan.PendingPages, plan.SendPages + plan.HeldPages + plan.DeferredPages);
        Assert.Equal(plan.PendingBytes, plan.SendBytes + plan.HeldBytes + plan.DeferredBytes);
        Assert.Equal(120, plan.HeldPages);
        Assert.Equal(2000, plan.SendPages);
    }

    [Fact]
    public void Zero_pages_cost_only_their_header()
    {
        var nonZero = Bitmap(128, 0, 1, 2);
        var pending = new DirtyBitmap(128);
        pending.SetAll();
        var (plan, send, _) = Plan(pending, null, 0, nonZero: nonZero);
        Assert.Equal(3 * Full + 125 * Header, plan.SendBytes);
        Assert.Equal(128, send.Count());
    }
}
