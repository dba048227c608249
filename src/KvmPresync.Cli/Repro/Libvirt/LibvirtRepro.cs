using System.Diagnostics;
using KvmPresync.Libvirt.Guest;
using KvmPresync.Libvirt.Testbed;
using KvmPresync.Migration;

namespace KvmPresync.Cli.Repro.Libvirt;

/// <summary>
/// <c>repro --target libvirt</c>: for each workload, run and mode, on two fresh private libvirt instances
/// (<see cref="LibvirtTestbed"/>) a fresh Linux guest (<see cref="LinuxGuestDomain"/>) boots on the source, runs its
/// workload, and the mode (<see cref="ILibvirtReproMode"/>) syncs and migrates it. Around every mode alike:
/// <list type="bullet">
/// <item>the consoles are polled every <see cref="ConsolePollInterval"/> (each heartbeat's arrival is timed);</item>
/// <item>the destination's domain state is watched (<see cref="DomainRunningWatch"/>): launch-to-resume runs from the
/// mode's launch to the first poll that sees it running, not to the migrate call's return;</item>
/// <item>afterwards <see cref="DestinationHeartbeats"/> heartbeats must arrive on the destination console, and the
/// KPHB chain must be unbroken from the source's first to the destination's last (<see cref="HeartbeatHandover"/>);
/// a run whose chain breaks fails.</item>
/// </list>
/// Each run's testbed and guest are disposed before the next: nothing is left behind.
/// </summary>
internal static class LibvirtRepro
{
    /// <summary>Heartbeats (100 ms each) the destination must print after the migration: 2 s of the guest running there.</summary>
    public const int DestinationHeartbeats = 20;

    public static readonly TimeSpan ConsolePollInterval = TimeSpan.FromMilliseconds(10);

    private static readonly TimeSpan BootTimeout = TimeSpan.FromSeconds(120);

    /// <summary>On top of the sync period: how long a mode may take to migrate before the run is cancelled.</summary>
    private static readonly TimeSpan MigrationTimeLimit = TimeSpan.FromSeconds(180);

    /// <summary>The Linux guest image above the kvmpresync executable (build/guest-image), or null.</summary>
    public static string? DefaultImageDirectory()
    {
        for (string? d = AppContext.BaseDirectory; d is not null; d = Path.GetDirectoryName(d))
        {
            foreach (string candidate in new[] { Path.Combine(d, "guest-image"), Path.Combine(d, "build", "guest-image") })
                if (LinuxGuestDomain.ImageProblem(candidate) is null) return candidate;
        }
        return null;
    }

    /// <summary>
    /// Runs every workload, run and mode, adding each run to <paramref name="results"/> as it ends (a cancelled repro
    /// keeps them) and calling <paramref name="afterEachRun"/> then.
    /// </summary>
    public static async Task RunAsync(ReproCommand.Settings s, IReadOnlyList<ILibvirtReproMode> modes, string imageDirectory,
        LibvirtLink link, TextWriter progress, List<ReproModeRun> results, CancellationToken ct, Action? afterEachRun = null)
    {
        var total = Stopwatch.StartNew();
        int n = 0, count = s.Workloads.Length * modes.Count * s.Runs;
        foreach (string workload in s.Workloads)
            for (int run = 1; run <= s.Runs; run++)
                foreach (ILibvirtReproMode mode in modes)
                {
                    n++;
                    progress.WriteLine($"[{n}/{count}] {workload} {mode.Name} run {run}: fresh libvirt instances and guest, {s.SyncSeconds:0} s of the workload, then launch ({total.Elapsed.TotalSeconds:0} s elapsed)");
                    ReproModeRun r = await OneAsync(s, mode, imageDirectory, link, workload, run, progress, ct);
                    results.Add(r);
                    afterEachRun?.Invoke();
                    MigrationResult m = r.Result;
                    string stall = r.Libvirt?.Heartbeats.StallMs is { } st ? $", console stall {st:0} ms" : "";
                    progress.WriteLine(m.Succeeded
                        ? $"        launch-to-resume {m.LaunchToResumeMs:0.0} ms, downtime {m.DowntimeMs:0.0} ms{stall}, sent {Units.FormatBytes(m.SyncBytes + m.LaunchBytes)}, heartbeat chain verified ({r.Libvirt?.Heartbeats.DestinationHeartbeats} on the destination)"
                        : $"        FAILED: {m.Failure}");
                }
    }

    private static async Task<ReproModeRun> OneAsync(ReproCommand.Settings s, ILibvirtReproMode mode, string imageDirectory, LibvirtLink link,
        string workload, int run, TextWriter progress, CancellationToken ct)
    {
        void Say(string message) { lock (progress) progress.WriteLine($"        {message}"); }
        var (sourceOptions, destinationOptions) = mode.TestbedOptions;
        Say("starting two private libvirt instances …");
        using LibvirtTestbed testbed = LibvirtTestbed.Start(sourceOptions with { NetworkNamespace = link.SourceNamespace },
            destinationOptions with { NetworkNamespace = link.DestinationNamespace }, link.MigrationAddress);
        Say($"source instance {testbed.Source.BaseDirectory}, destination instance {testbed.Destination.BaseDirectory} (logs in log/ there)");
        LinuxGuestDomain guest;
        try { guest = LinuxGuestDomain.Start(testbed, imageDirectory, workload, editXml: mode.EditGuestXml); }
        catch (KvmPresync.Libvirt.LibvirtException e) { return Failed(workload, mode, run, $"the fresh guest could not start: {e.Message}"); }
        using (guest) return await OneOnGuestAsync(s, mode, link, testbed, guest, workload, run, progress, ct);
    }

    private static async Task<ReproModeRun> OneOnGuestAsync(ReproCommand.Settings s, ILibvirtReproMode mode, LibvirtLink link, LibvirtTestbed testbed,
        LinuxGuestDomain guest, string workload, int run, TextWriter progress, CancellationToken ct)
    {
        void Say(string message) { lock (progress) progress.WriteLine($"        {message}"); }
        Say($"fresh guest {guest.Name} booting (Linux under TCG, {workload}; consoles in {guest.Directory}) …");
        double bootMs;
        try
        {
            await guest.WaitAsync(c => c.Heartbeats.Count > 0, BootTimeout, "first heartbeat", cancellationToken: ct);
            bootMs = guest.SinceStart.Elapsed.TotalMilliseconds;
            Say($"first heartbeat {bootMs / 1000:0.0} s after start; waiting for the workload to be ready (KPREADY) …");
            await guest.WaitAsync(c => c.FirstHeartbeatAfterReady is not null, BootTimeout, "KPREADY and a heartbeat after it", cancellationToken: ct);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            return Failed(workload, mode, run, $"the fresh guest did not get its workload running: {e.Message}");
        }
        int syncStart = guest.Console.FirstHeartbeatAfterReady!.Value;

        LibvirtReproContext context;
        LibvirtModeOutcome outcome;
        long? runningAt;
        int? runningReason;
        await using (DomainRunningWatch watch = DomainRunningWatch.Prepare(testbed.Destination, guest.Name))
        {
            context = new LibvirtReproContext(testbed, guest, workload, run, TimeSpan.FromSeconds(s.SyncSeconds), link, progress, watch);
            using var stopPolling = new CancellationTokenSource();
            Task poller = PollAsync(guest, stopPolling.Token);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
            limit.CancelAfter(context.SyncPeriod + MigrationTimeLimit);
            try { outcome = await mode.RunAsync(context, limit.Token); }
            catch (Exception e) when (!ct.IsCancellationRequested && e is not OutOfMemoryException)
            {
                outcome = new LibvirtModeOutcome { Succeeded = false, Failure = $"{mode.Name} failed: {e.Message}" };
            }
            finally
            {
                await stopPolling.CancelAsync();
                await poller;
            }
            runningAt = watch.RunningAt;
            runningReason = watch.RunningReason;
        }
        double? launchToResume = context.LaunchedAt is { } launched && runningAt is { } resumed
            ? Stopwatch.GetElapsedTime(launched, resumed).TotalMilliseconds
            : null;
        if (launchToResume is { } l2r) Say($"destination domain running {l2r:0} ms after launch; waiting for {DestinationHeartbeats} heartbeats on its console …");

        if (outcome.Succeeded)
        {
            try
            {
                await guest.WaitAsync(c => c.Arrivals.Count(a => a.File == guest.DestinationConsolePath) >= DestinationHeartbeats
                    || c.Gaps.Count > 0, TimeSpan.FromSeconds(60), $"{DestinationHeartbeats} heartbeats on the destination console",
                    sourceMayStop: true, interval: ConsolePollInterval, cancellationToken: ct);
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException) { } // the verdict below says what is missing
        }
        else guest.PollConsole();

        HeartbeatHandover heartbeats = HeartbeatHandover.Check(guest.Console, guest.SourceConsolePath, guest.DestinationConsolePath, DestinationHeartbeats);
        string? failure = !outcome.Succeeded ? outcome.Failure ?? $"{mode.Name} failed without saying why"
            : launchToResume is null ? (context.LaunchedAt is null ? $"{mode.Name} never marked its launch" : "the destination domain was never seen running")
            : heartbeats.Failure;
        var (rateDuringSync, rateFirstSeconds) = ProgressRates(guest.Console, syncStart, context.LaunchedAt);
        MigrationResult result = (outcome.Presync ?? new MigrationResult { Succeeded = false }) with
        {
            Succeeded = failure is null,
            Failure = failure,
            Verified = failure is null && heartbeats.Verified && outcome.MemoryVerified != false,
            LaunchToResumeMs = launchToResume ?? 0,
            DowntimeMs = outcome.DowntimeMs ?? heartbeats.StallMs ?? 0,
            SyncBytes = outcome.Presync?.SyncBytes ?? outcome.SyncBytes,
            LaunchBytes = outcome.Presync?.LaunchBytes ?? outcome.LaunchBytes,
            ProgressRateDuringSync = rateDuringSync,
            ProgressRateFirstSeconds = rateFirstSeconds,
        };
        return new ReproModeRun
        {
            Workload = workload,
            Mode = mode.Name,
            Run = run,
            Result = result,
            ProgressRateDuringSync = rateDuringSync,
            Libvirt = new LibvirtRunDetail
            {
                Domain = guest.Name,
                DestinationRunningReason = runningReason is { } why ? DomainRunningWatch.ReasonName(why) : null,
                BootMs = bootMs,
                ReportedDowntimeMs = outcome.DowntimeMs,
                MigrateCallMs = outcome.MigrateCallMs,
                Heartbeats = heartbeats,
                JobStats = outcome.JobStats,
            },
        };
    }

    /// <summary>The harness alone polls the consoles while the mode runs, timing each heartbeat's arrival.</summary>
    private static async Task PollAsync(LinuxGuestDomain guest, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            guest.PollConsole();
            try { await Task.Delay(ConsolePollInterval, stop); }
            catch (OperationCanceledException) { }
        }
        guest.PollConsole();
    }

    /// <summary>
    /// The guest's work rate (progress units per guest second) from the first heartbeat after KPREADY to the last one
    /// read before launch, and over the first <see cref="PresyncSender.ProgressSampleWindow"/> of that (the slowdown figure).
    /// </summary>
    private static (double DuringSync, double? FirstSeconds) ProgressRates(LinuxGuestConsole console, int syncStart, long? launchedAt)
    {
        int end = syncStart;
        for (int i = syncStart; i < console.Heartbeats.Count && (launchedAt is null || console.Arrivals[i].Timestamp <= launchedAt); i++) end = i;
        static double? Rate(HeartbeatLine a, HeartbeatLine b) =>
            a.TimeMs is { } ta && b.TimeMs is { } tb && tb > ta ? (b.Progress - a.Progress) / ((tb - ta) / 1000.0) : null;
        HeartbeatLine first = console.Heartbeats[syncStart];
        double window = PresyncSender.ProgressSampleWindow.TotalMilliseconds;
        int sample = syncStart;
        while (sample < end && console.Heartbeats[sample + 1].TimeMs is { } t && t - first.TimeMs.GetValueOrDefault() <= window) sample++;
        double? firstSeconds = console.Heartbeats[sample].TimeMs - first.TimeMs >= window * 0.9 ? Rate(first, console.Heartbeats[sample]) : null;
        return (Rate(first, console.Heartbeats[end]) ?? 0, firstSeconds);
    }

    private static ReproModeRun Failed(string workload, ILibvirtReproMode mode, int run, string why) => new()
    {
        Workload = workload,
        Mode = mode.Name,
        Run = run,
        Result = new MigrationResult { Succeeded = false, Failure = why },
    };
}
