using KvmPresync.Migration;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// What a sync round's send tells a live rate (<c>SyncPhase.RateSample</c>): for the readiness estimate's timing, the pages
/// after the moment the send had used the rate limiter's burst, over the time since then (the live rounds after launch, back
/// to back, never have the burst); for the convergence policy, and without a mark, the whole send less the burst's share.
/// </summary>
public sealed class SyncSendRateTests
{
    private const double Page = 4096 + 16;
    private static readonly TimeSpan Start = TimeSpan.FromSeconds(10);

    private static TimeSpan Ms(double ms) => Start + TimeSpan.FromMilliseconds(ms);

    [Fact]
    public void PastTheBurstTheRateIsThePagesAfterTheMarkOverTheTimeSinceIt()
    {
        // 1,500 pages listed; the burst was used up 4 ms in, with 1,000 still to go; all 1,500 sent by 22 ms: 1,000 pages in 18 ms
        (long bytes, TimeSpan took) = SyncPhase.RateSample(1500, 1500, (Ms(4), 1000), Start, Ms(22), wire: 1_500_000, burstBytes: 500_000, Page);
        Assert.Equal((long)(1000 * Page), bytes);
        Assert.Equal(TimeSpan.FromMilliseconds(18), took);
    }

    [Fact]
    public void ALaunchThatStopsTheSendCountsOnlyThePagesProcessedAfterTheMark()
    {
        // the launch stopped the send after 1,200 of the 1,500 pages: 700 of them after the mark
        (long bytes, TimeSpan took) = SyncPhase.RateSample(1500, 1200, (Ms(4), 1000), Start, Ms(16), wire: 1_200_000, burstBytes: 500_000, Page);
        Assert.Equal((long)(700 * Page), bytes);
        Assert.Equal(TimeSpan.FromMilliseconds(12), took);
        // stopped right at the mark: nothing after it
        Assert.Equal(0, SyncPhase.RateSample(1500, 500, (Ms(4), 1000), Start, Ms(4.5), wire: 500_000, burstBytes: 500_000, Page).PageBytes);
    }

    [Fact]
    public void WithoutAMarkTheWholeSendCountsLessTheBurstsShareOfItsBytes()
    {
        // a round that never used the burst up (or no marks: data streams) — a third of its 1.5 MB was the burst
        (long bytes, TimeSpan took) = SyncPhase.RateSample(1500, 1500, null, Start, Ms(20), wire: 1_500_000, burstBytes: 500_000, Page);
        Assert.Equal((long)(1500 * Page * (1 - 1.0 / 3)), bytes);
        Assert.Equal(TimeSpan.FromMilliseconds(20), took);
        // no rate limiter: the whole round
        Assert.Equal((long)(1500 * Page), SyncPhase.RateSample(1500, 1500, null, Start, Ms(20), wire: 1_500_000, burstBytes: null, Page).PageBytes);
        // a round within the burst counts nothing
        Assert.Equal(0, SyncPhase.RateSample(100, 100, null, Start, Ms(1), wire: 100_000, burstBytes: 500_000, Page).PageBytes);
    }
}
