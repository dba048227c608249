using KvmPresync.Vmm.Devices;

namespace KvmPresync.Tests.Vmm;

/// <summary>The schedule time a paced guest has caught up to, from the due time and lost time it publishes.</summary>
public sealed class GuestScheduleTests
{
    [Fact]
    public void WithoutAPublishedScheduleThereIsNone()
    {
        var s = new GuestSchedule();
        Assert.Null(s.CaughtUpUs(5_000));
        s.Publish(0, 0); // the mailbox of a workload that keeps no schedule
        Assert.Null(s.CaughtUpUs(5_000));
        Assert.Null(s.LostUs);
    }

    [Fact]
    public void CaughtUpToTheClockUntilTheNextItemIsDueThenToItsDueTimeWhileLate()
    {
        var s = new GuestSchedule();
        s.Publish(dueUs: 10_000, lostUs: 0);
        Assert.Equal(4_000, s.CaughtUpUs(4_000));   // waiting for the next item: nothing due is undone
        Assert.Equal(10_000, s.CaughtUpUs(10_000));
        Assert.Equal(10_000, s.CaughtUpUs(60_000)); // 50 ms late for it: stays at its due time
        s.Publish(dueUs: 70_000, lostUs: 0);
        Assert.Equal(65_000, s.CaughtUpUs(65_000)); // caught up again
    }

    [Fact]
    public void DroppedItemsScheduleTimeIsLeftOut()
    {
        var s = new GuestSchedule();
        s.Publish(dueUs: 3_000_000, lostUs: 1_200_000); // woke late, dropped 1.2 s of items, did the rest
        Assert.Equal(1_800_000, s.CaughtUpUs(3_000_000));
        Assert.Equal(1_200_000, s.LostUs);
    }
}
