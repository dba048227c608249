namespace KvmPresync.Vmm.Devices;

/// <summary>
/// A paced workload's schedule as the guest last published it (<c>mailbox.sched_due_us</c>, <c>sched_lost_us</c>, read at
/// READY, PACE and PROGRESS): the guest has done every item due before <c>due</c> and dropped items worth <c>lost</c> µs of schedule
/// as too late. <see cref="CaughtUpUs"/> is the schedule time it has caught up to: it advances with the clock while the
/// guest keeps up — also through the pauses of a bursty schedule, so a window's figure does not depend on how many items
/// happened to fall in it — stays at an item's due time while the guest is late for it, and leaves out what it dropped.
/// Written on the vCPU thread, read from any.
/// </summary>
public sealed class GuestSchedule
{
    private sealed record Published(long DueUs, long LostUs);

    private Published? _published; // null: the workload keeps no schedule (or has not published one yet)

    /// <summary>Takes the values of the mailbox fields; both 0 means the workload keeps no schedule.</summary>
    public void Publish(ulong dueUs, ulong lostUs)
    {
        if (dueUs == 0 && lostUs == 0) return;
        long due = (long)Math.Min(dueUs, long.MaxValue), lost = (long)Math.Min(lostUs, long.MaxValue);
        if (Volatile.Read(ref _published) is { } p && p.DueUs == due && p.LostUs == lost) return; // every PACE publishes: no new record when nothing moved
        Volatile.Write(ref _published, new Published(due, lost));
    }

    /// <summary>
    /// Schedule time caught up at guest time <paramref name="nowUs"/>: <c>min(now, due) − lost</c>, µs; null when the
    /// workload published no schedule.
    /// </summary>
    public long? CaughtUpUs(long nowUs) => Volatile.Read(ref _published) is { } p ? Math.Min(nowUs, p.DueUs) - p.LostUs : null;

    /// <summary>Schedule time dropped as too late so far, µs; null without a schedule.</summary>
    public long? LostUs => Volatile.Read(ref _published)?.LostUs;
}
