using System.Buffers.Binary;
using KvmPresync.Memory;

namespace KvmPresync.Vmm.Replay;

/// <summary>What a replay guest has been given so far; <see cref="MaxLateUs"/>: the worst delay of an interval's first batch.</summary>
public sealed record ReplayStats(long Batches, long Intervals, long Pages, long LateIntervals, long MaxLateUs, bool Ended);

/// <summary>
/// The replay workload's device: answers OUT <see cref="GuestAbi.PortReplay"/> by writing the next batch of the feed into
/// the replay mailbox (<c>struct kp_replay_batch</c> at <see cref="GuestAbi.ReplayMailboxGpa"/>), due at the interval's
/// start on the guest clock (time 0 = the guest's first request). The pages it writes are marked in the machine's
/// <c>VmmWrites</c> with atomic ORs (a harvest may take them concurrently). Without a feed (a machine restored from a
/// snapshot: the trace stayed with the source) every answer is <see cref="GuestAbi.ReplayBatch.FlagEnd"/>.
/// Runs on the vCPU thread; <see cref="Stats"/> may be read from any thread.
/// </summary>
internal sealed class ReplayMailbox(GuestMemory lowMemory, DirtyBitmap vmmWrites, IReplayFeed? feed)
{
    /// <summary>An interval's first batch counts as late when the guest asks for it more than this after its start.</summary>
    private const long LateThresholdUs = 1000;

    private readonly ReplayRun[] _runs = feed is null ? [] : new ReplayRun[GuestAbi.ReplayMaxRuns];
    private readonly Lock _statsLock = new();
    private long? _originUs;
    private long _lastInterval = -1;
    private long _pendingDueUs = long.MaxValue; // due time of the batch the guest holds (long.MaxValue: none yet, or ended)
    private ReplayStats _stats = new(0, 0, 0, 0, 0, false);

    public ReplayStats Stats
    {
        get { lock (_statsLock) return _stats; }
    }

    /// <summary>Writes the answer to request <paramref name="seq"/> (low 32 bits of the guest's sequence number) at guest time <paramref name="nowUs"/>.</summary>
    public void Answer(uint seq, long nowUs)
    {
        Span<byte> box = lowMemory.Slice((long)GuestAbi.ReplayMailboxGpa, GuestAbi.ReplayMailboxPages * 4096);
        box[..GuestAbi.ReplayBatch.Size].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(box[GuestAbi.ReplayBatch.Seq..], seq);
        ReplayBatch? next = feed?.Next(_runs);
        if (next is not { } b)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(box[GuestAbi.ReplayBatch.Flags..], GuestAbi.ReplayBatch.FlagEnd);
            Mark(GuestAbi.ReplayBatch.Size);
            lock (_statsLock) _stats = _stats with { Ended = true };
            Volatile.Write(ref _pendingDueUs, long.MaxValue);
            return;
        }
        if (b.RunCount < 0 || b.RunCount > _runs.Length)
            throw new InvalidOperationException($"replay feed: batch of interval {b.Interval} has {b.RunCount} runs; a batch holds 0..{_runs.Length}");
        long origin = _originUs ??= nowUs;
        Interlocked.Exchange(ref _originForReaders, origin);
        long dueUs = origin + (long)(b.Start.Ticks / TimeSpan.TicksPerMicrosecond);
        BinaryPrimitives.WriteUInt64LittleEndian(box[GuestAbi.ReplayBatch.Interval..], (ulong)b.Interval);
        BinaryPrimitives.WriteUInt64LittleEndian(box[GuestAbi.ReplayBatch.DueUs..], (ulong)dueUs);
        BinaryPrimitives.WriteUInt64LittleEndian(box[GuestAbi.ReplayBatch.Pages..], (ulong)b.Pages);
        BinaryPrimitives.WriteUInt32LittleEndian(box[GuestAbi.ReplayBatch.RunCount..], (uint)b.RunCount);
        BinaryPrimitives.WriteUInt32LittleEndian(box[GuestAbi.ReplayBatch.Progress..], b.Progress);
        Span<byte> runs = box[GuestAbi.ReplayBatch.Runs..];
        for (int i = 0; i < b.RunCount; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(runs[(i * GuestAbi.ReplayRun.Size + GuestAbi.ReplayRun.First)..], _runs[i].First);
            BinaryPrimitives.WriteUInt32LittleEndian(runs[(i * GuestAbi.ReplayRun.Size + GuestAbi.ReplayRun.Count)..], _runs[i].Count);
        }
        Mark(GuestAbi.ReplayBatch.Size + b.RunCount * GuestAbi.ReplayRun.Size);
        Volatile.Write(ref _pendingDueUs, dueUs);

        bool first = b.Interval != _lastInterval;
        _lastInterval = b.Interval;
        long late = first ? nowUs - dueUs : 0;
        lock (_statsLock)
            _stats = _stats with
            {
                Batches = _stats.Batches + 1,
                Intervals = _stats.Intervals + (first ? 1 : 0),
                Pages = _stats.Pages + b.Pages,
                LateIntervals = _stats.LateIntervals + (late > LateThresholdUs ? 1 : 0),
                MaxLateUs = Math.Max(_stats.MaxLateUs, late),
            };
    }

    /// <summary>
    /// How far the guest has replayed the trace at guest time <paramref name="nowUs"/>, in trace µs since the replay began:
    /// the guest has written every batch before the one it holds, so it is caught up to that batch's due time, or to now
    /// while it waits for it. A guest keeping up advances this one µs per µs; one that falls behind, slower — so its rate
    /// is the replay's pace, whatever the trace's burstiness. Null before the first batch; after the end, now.
    /// </summary>
    public long? ReplayedUpToUs(long nowUs)
    {
        long origin = Interlocked.Read(ref _originForReaders);
        return origin == long.MinValue ? null : Math.Min(nowUs, Volatile.Read(ref _pendingDueUs)) - origin;
    }

    private long _originForReaders = long.MinValue;

    /// <summary>Marks the mailbox pages holding the first <paramref name="bytes"/> bytes (region 0: linear index = GPA / 4096).</summary>
    private void Mark(int bytes)
    {
        long firstPage = (long)(GuestAbi.ReplayMailboxGpa / 4096);
        long pages = (bytes + 4095) / 4096;
        for (long p = 0; p < pages; p++) vmmWrites.SetAtomic(firstPage + p);
    }
}
