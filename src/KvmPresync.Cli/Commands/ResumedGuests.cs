using System.Diagnostics;
using KvmPresync.Migration;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Migration;

namespace KvmPresync.Cli.Commands;

/// <summary>
/// The guests a receiver resumed: each keeps running here until its time is up (<c>--run-seconds</c>), it stops by
/// itself, or the owner stops them all; then it is paused and its health (heartbeat continuity, self-checks) reported.
/// </summary>
internal sealed class ResumedGuests(ServiceLog log, double? runSeconds, CancellationToken stopAll)
{
    private static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(10);
    private readonly List<Task<int>> _guests = [];
    private int _running;

    public int Running => Volatile.Read(ref _running);

    /// <summary>Takes ownership of a resumed target and watches its guest; <paramref name="console"/> shows a live view (one guest).</summary>
    public void Add(string session, MachineMigrationTarget target, bool console = false)
    {
        Interlocked.Increment(ref _running);
        lock (_guests) _guests.Add(Task.Run(() => WatchAsync(session, target, console)));
    }

    /// <summary>Waits for every guest to stop; the exit code: Ok when all were healthy, else the worst (GuestFailed before GuestUnhealthy).</summary>
    public async Task<int> WaitAllAsync()
    {
        Task<int>[] all;
        lock (_guests) all = [.. _guests];
        int[] codes = await Task.WhenAll(all);
        return codes.Contains(ExitCodes.GuestFailed) ? ExitCodes.GuestFailed : codes.Contains(ExitCodes.GuestUnhealthy) ? ExitCodes.GuestUnhealthy : ExitCodes.Ok;
    }

    private async Task<int> WatchAsync(string session, MachineMigrationTarget target, bool console)
    {
        using (target)
        {
            Machine machine = target.Machine!;
            var view = console ? LiveView.ForConsole() : null;
            var ran = Stopwatch.StartNew();
            TimeSpan lastReport = TimeSpan.Zero;
            long lastProgress = machine.Telemetry.ProgressTotal;
            while (!stopAll.IsCancellationRequested && !machine.Completion.IsCompleted && (runSeconds is null || ran.Elapsed.TotalSeconds < runSeconds))
            {
                try { await Task.Delay(1000, stopAll); } catch (OperationCanceledException) { break; }
                long p = machine.Telemetry.ProgressTotal;
                view?.Update($"{ran.Elapsed.TotalSeconds,6:0.0}s  progress {p - lastProgress,5}/s  heartbeats {machine.Telemetry.HeartbeatCount}  continuity errors {machine.Telemetry.ContinuityErrors}  self-check errors {machine.Telemetry.SelfCheckErrors}");
                lastProgress = p;
                if (view is null && ran.Elapsed - lastReport >= ProgressEvery)
                {
                    lastReport = ran.Elapsed;
                    log.Info("guest.progress", session, ("heartbeats", machine.Telemetry.HeartbeatCount), ("progress", p),
                        ("continuity_errors", machine.Telemetry.ContinuityErrors), ("self_check_errors", machine.Telemetry.SelfCheckErrors));
                }
            }
            view?.Done();
            if (!machine.Completion.IsCompleted) machine.Pause();
            bool failed = machine.Completion.IsCompleted && machine.Completion.Result is { } exit
                && exit.Kind != MachineExitKind.Stopped && exit.GuestCode != GuestExitCode.Ok;
            bool healthy = !failed && machine.Telemetry.ContinuityErrors == 0 && machine.Telemetry.SelfCheckErrors == 0;
            log.Info("guest.stopped", session, ("ran_s", ran.Elapsed.TotalSeconds), ("heartbeats", machine.Telemetry.HeartbeatCount),
                ("last_seq", machine.Telemetry.LastHeartbeat?.Seq), ("continuity_errors", machine.Telemetry.ContinuityErrors),
                ("self_check_errors", machine.Telemetry.SelfCheckErrors), ("healthy", healthy));
            if (console)
                Console.WriteLine($"destination guest: heartbeats {machine.Telemetry.HeartbeatCount}, last seq {machine.Telemetry.LastHeartbeat?.Seq}, continuity errors {machine.Telemetry.ContinuityErrors}, self-check errors {machine.Telemetry.SelfCheckErrors}");
            Interlocked.Decrement(ref _running);
            return failed ? ExitCodes.GuestFailed : healthy ? ExitCodes.Ok : ExitCodes.GuestUnhealthy;
        }
    }
}
