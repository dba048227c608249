using KvmPresync.Engine;
using KvmPresync.Migration;

namespace KvmPresync.Tests.Migration;

/// <summary>The channel behind <see cref="PresyncSender.ReadRoundsAsync"/>, without a guest: bounded, drop-oldest, never waits.</summary>
public sealed class RoundFeedTests
{
    private static RoundRecord Round(long n) => new()
    {
        Round = n, Phase = RoundPhase.Sync, TimeMs = n, DirtyPages = 0, PendingPages = 0, SentPages = 0, SentBytes = 0, HeldPages = 0,
        HeldBytes = 0, DeferredPages = 0, WindowBytes = 0, IntervalMs = 100, RemainingAtLaunchBytes = 0,
    };

    [Fact]
    public async Task A_reader_that_falls_behind_keeps_the_newest_rounds_and_publishing_never_waits()
    {
        var feed = new RoundFeed();
        var slow = feed.Subscribe(capacity: 4);
        var prompt = feed.Subscribe(capacity: 64);
        for (long n = 0; n < 10; n++) feed.Publish(Round(n)); // nobody reads: returns at once
        feed.End();

        var kept = new List<long>();
        await foreach (RoundRecord r in slow.Reader.ReadAllAsync(TestContext.Current.CancellationToken)) kept.Add(r.Round);
        Assert.Equal([6, 7, 8, 9], kept);
        var all = new List<long>();
        await foreach (RoundRecord r in prompt.Reader.ReadAllAsync(TestContext.Current.CancellationToken)) all.Add(r.Round);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), all);
    }

    [Fact]
    public void A_reader_subscribed_after_the_end_is_complete_and_one_that_left_gets_nothing_more()
    {
        var feed = new RoundFeed();
        var left = feed.Subscribe(capacity: 4);
        feed.Unsubscribe(left);
        feed.Publish(Round(1));
        Assert.True(left.Reader.Completion.IsCompleted);
        Assert.False(left.Reader.TryRead(out _));
        feed.End();
        Assert.True(feed.Subscribe(capacity: 4).Reader.Completion.IsCompleted);
    }
}
