namespace KvmPresync.Vmm.Replay;

/// <summary>
/// The pages a replay guest (<see cref="Workload.Replay"/>) writes, batch by batch: a recorded dirty trace, read by the
/// caller's adapter (the CLI's <c>TraceReplayFeed</c>), or a test's script. The machine calls <see cref="Next"/> on its
/// vCPU thread, each time the guest asks for the next batch, so an implementation needs no locking; the guest has written
/// every page of the previous batch by then.
/// </summary>
public interface IReplayFeed
{
    /// <summary>Pages of the replay region: trace page i is written as replay-region page i.</summary>
    long PageCount { get; }

    /// <summary>
    /// Writes the next batch's runs into <paramref name="runs"/> (at most its length, ascending) and describes it; null when
    /// the trace has ended (the guest then only heartbeats). Every interval, even an empty one, yields at least one batch.
    /// </summary>
    ReplayBatch? Next(Span<ReplayRun> runs);
}

/// <summary>A run of replay-region pages to write.</summary>
public readonly record struct ReplayRun(uint First, uint Count);

/// <summary>
/// One batch: <paramref name="Interval"/> is the trace interval (counting on across loops of the trace); <paramref name="Start"/>
/// the interval's start since the replay began, when the guest writes it; <paramref name="Progress"/> the work units the trace
/// recorded for the interval (reported by the guest after its first batch; 0 in the others).
/// </summary>
public readonly record struct ReplayBatch(long Interval, TimeSpan Start, int RunCount, long Pages, uint Progress);
