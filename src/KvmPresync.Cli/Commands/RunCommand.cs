using KvmPresync.Engine;
using System.CommandLine;
using System.Diagnostics;
using KvmPresync.Kvm;
using KvmPresync.Memory;
using KvmPresync.Vmm;

namespace KvmPresync.Cli.Commands;

/// <summary><c>kvmpresync run</c>: runs a workload guest, showing its progress rate and dirty-page rate live.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var guest = new GuestOptions();
        var seconds = new Option<double>("--seconds", "-s") { Description = "Without --presync-to: how long to run the guest, in seconds, after its initial memory fill", DefaultValueFactory = _ => 30 };
        var presyncTo = new Option<string?>("--presync-to") { Description = "Keep the guest's memory in sync with a receiver at ADDRESS:PORT and migrate it at launch" };
        var psk = MigrationOptions.PskFile(required: false);
        var link = MigrationOptions.LinkRate();
        var bandwidth = MigrationOptions.Bandwidth();
        var policy = MigrationOptions.Policy();
        var launchAfter = new Option<string?>("--launch-after") { Description = "With --presync-to: launch the migration after this long, e.g. 60s, 1.5m (a bare number is seconds); default: launch on Enter (when stdin is a terminal) or SIGUSR1" };
        var noPresync = new Option<bool>("--no-presync") { Description = "Classic pre-copy: send nothing before launch, then iterate over all memory (the baseline the paper compares with)" };
        var maxFinal = new Option<string>("--max-final-duration") { Description = "How long live copying may continue after launch before the guest is paused, e.g. 300ms, 2s", DefaultValueFactory = _ => "300ms" };
        var launchTarget = MigrationOptions.LaunchTarget();
        var pauseAtQuiet = MigrationOptions.PauseAtQuiet();
        var burstClock = MigrationOptions.BurstClock();
        var zeroCopy = new Option<bool>("--zero-copy") { Description = "Send page payloads with MSG_ZEROCOPY (completions are awaited before the final digest; loopback always copies)" };
        var verify = new Option<string>("--verify")
        {
            Description = "With --presync-to: how the source's memory digest is computed at the switchover — delta: from the hashes of what was sent, " +
                          "hashing only the paused delta (trusts the dirty log); full: re-hash all paused memory (+~0.1 ms per MiB of guest; also re-verifies the dirty tracking itself)",
            DefaultValueFactory = _ => "delta",
        };
        verify.AcceptOnlyFromAmong("delta", "full");
        var compression = new Option<string>("--compression")
        {
            Description = "With --presync-to: compress page batches — auto (default: per batch raw, LZ4 or zstd, whichever the measured ratio, compress speed and link rate say is fastest; raw when the CPU is the bottleneck or pages do not compress), off, lz4, zstd. Zero-copy sends stay raw",
            DefaultValueFactory = _ => "auto",
        };
        compression.AcceptOnlyFromAmong("auto", "off", "lz4", "zstd");
        var tls = new TlsOptionsBinding();
        var reconnectFor = new Option<string>("--reconnect-for") { Description = "With --presync-to: when the connection is lost during sync, keep the guest running and reconnect for up to this long, resuming the receiver's session (0 = off)", DefaultValueFactory = _ => "2m" };
        var streams = new Option<int>("--streams") { Description = "With --presync-to: TCP connections to use (1-16, the authenticated main one included); pages are striped across them, each page always on the same one (protocol 1.3; after a reconnection: one)", DefaultValueFactory = _ => DefaultStreams };
        var baseline = new Option<string>("--baseline-seconds") { Description = "With --presync-to: let the guest run this long before connecting, nothing sent, and report its slowdown during presync against its work rate then, e.g. 5s (0 = no baseline, no slowdown figure)", DefaultValueFactory = _ => "5s" };
        var metrics = MetricsOption.Create("the presync (with --presync-to) — dirty rate, pending/held/deferred bytes, window, RTT, bytes sent, rounds, readiness, guest progress");
        var json = new Option<string?>("--json") { Description = "With --presync-to: write the migration result (launchToResumeMs, downtimeMs, syncBytes, launchBytes, verified, rounds) to this file" };
        var cmd = new Command("run", "Run a workload guest on KVM and show its progress and dirty-page rates; with --presync-to, pre-synchronize it to a receiver and migrate it at launch");
        guest.AddTo(cmd);
        cmd.Options.Add(seconds);
        cmd.Options.Add(presyncTo);
        cmd.Options.Add(psk);
        cmd.Options.Add(link);
        cmd.Options.Add(bandwidth);
        cmd.Options.Add(policy);
        cmd.Options.Add(launchAfter);
        cmd.Options.Add(noPresync);
        cmd.Options.Add(maxFinal);
        cmd.Options.Add(launchTarget);
        cmd.Options.Add(pauseAtQuiet);
        cmd.Options.Add(burstClock);
        cmd.Options.Add(zeroCopy);
        cmd.Options.Add(verify);
        cmd.Options.Add(compression);
        cmd.Options.Add(json);
        tls.AddTo(cmd);
        cmd.Options.Add(reconnectFor);
        cmd.Options.Add(streams);
        cmd.Options.Add(baseline);
        cmd.Options.Add(metrics);
        cmd.SetAction(async (r, ct) =>
        {
            MachineConfig config = guest.ToConfig(r);
            SyncPolicy livePolicy = MigrationOptions.ParseLivePolicy(r.GetValue(policy)!); // refused with or without --presync-to, as --help says
            if (r.GetValue(presyncTo) is not { } to)
            {
                if (r.GetValue(metrics) is not null) throw new ArgumentException("--metrics needs --presync-to: it serves the presync's metrics");
                return Run(config, TimeSpan.FromSeconds(r.GetValue(seconds)), ct);
            }
            string pskFile = r.GetValue(psk) ?? throw new ArgumentException("--presync-to needs --psk-file (the key is never taken from the command line)");
            var settings = new PresyncRun.Settings(MigrationOptions.ParseEndpoint(to, "--presync-to"), pskFile, MigrationOptions.ParseLinkRate(r.GetValue(link)!), Wire.LinkRate.Parse(r.GetValue(bandwidth)!),
                livePolicy, r.GetValue(launchAfter) is { } after ? Units.ParseDuration(after, launchAfter.Name).TotalSeconds : null, r.GetValue(json), r.GetValue(zeroCopy), !r.GetValue(noPresync), Units.ParseDuration(r.GetValue(maxFinal)!, maxFinal.Name), ReconnectFor: Units.ParseDuration(r.GetValue(reconnectFor)!, reconnectFor.Name));
            if (settings.ZeroCopy && tls.Given(r)) throw new ArgumentException(Migration.PresyncOptions.ZeroCopyWithTlsRefused);
            int streamCount = r.GetValue(streams);
            if (streamCount < 1 || streamCount > Wire.WireLimits.MaxStreams)
                throw new ArgumentException($"--streams must be between 1 and {Wire.WireLimits.MaxStreams} (the main connection included), not {streamCount}");
            TimeSpan baselineFor = Units.ParseDuration(r.GetValue(baseline)!, baseline.Name); // a bad value fails now, not after the guest booted
            settings = settings with
            {
                Tls = tls.Load(r),
                Streams = streamCount,
                Verify = r.GetValue(verify) == "full" ? Migration.VerifyMode.Full : Migration.VerifyMode.Delta,
                LaunchTarget = MigrationOptions.ParseLaunchTarget(r.GetValue(launchTarget)!),
                QuietWait = MigrationOptions.ParseQuietWait(r.GetValue(pauseAtQuiet)!),
                TimeBursts = MigrationOptions.ParseOnOff("--burst-clock", r.GetValue(burstClock)!),
                Compression = MigrationOptions.ParseCompression(r.GetValue(compression)!),
            };
            if (settings.ZeroCopy && settings.Compression is Migration.Compression.CompressionMode.Lz4 or Migration.Compression.CompressionMode.Zstd)
                throw new ArgumentException(Migration.PresyncOptions.CompressionWithZeroCopyRefused);
            await using MetricsServing? serving = MetricsOption.Start(r.GetValue(metrics)); // before the guest boots: a bad --metrics fails at once
            settings = settings with { Metrics = serving?.Registry };
            var view = LiveView.ForConsole();
            using var kvm = KvmSystem.Open();
            using var machine = Machine.Boot(kvm, config);
            Console.WriteLine($"booting {Replay.TraceWorkload.NameOf(config)}{(config.ReplayFeed is null ? "" : " replay")} guest: {Units.FormatBytes(config.MemorySize)} in {string.Join(", ", machine.Slots)}, seed {config.Seed}");
            machine.Start();
            if (!GuestRun.WaitReady(machine, view, ct)) return GuestRun.Report(machine, view);
            var source = new Vmm.Migration.MachineMigrationSource(machine);
            if (config.Workload == Workload.Replay)
                Console.WriteLine("a replay guest's work unit is the trace millisecond replayed: 1000 units/s while it keeps up with the trace");
            else if (machine.ScheduleMs is not null)
                Console.WriteLine("a paced guest's work unit is the millisecond of its schedule caught up (keys, periods, frames done when due; dropped ones never): 1000 units/s while it keeps up");
            if (baselineFor > TimeSpan.Zero)
                settings = settings with { Baseline = await SlowdownLines.MeasureBaselineAsync(source, baselineFor, ct) };
            int code = await PresyncRun.RunAsync(source, settings, view, ct);
            if (code != ExitCodes.Ok && !machine.Completion.IsCompleted)
                Console.Error.WriteLine($"the guest ran on here (progress {machine.Telemetry.ProgressTotal} units, {machine.Telemetry.HeartbeatCount} heartbeats); it stops now, with this command");
            return code;
        });
        return cmd;
    }

    /// <summary>--streams when not given (docs/ARCHITECTURE.md, "Several streams": what was measured on this machine).</summary>
    internal const int DefaultStreams = 1;

    private static int Run(MachineConfig config, TimeSpan duration, CancellationToken ct)
    {
        var view = LiveView.ForConsole();
        using var kvm = KvmSystem.Open();
        using var machine = Machine.Boot(kvm, config);
        Console.WriteLine($"booting {Replay.TraceWorkload.NameOf(config)}{(config.ReplayFeed is null ? "" : " replay")} guest: {Units.FormatBytes(config.MemorySize)} in {string.Join(", ", machine.Slots)}, seed {config.Seed}");
        machine.Start();
        if (!GuestRun.WaitReady(machine, view, ct)) return GuestRun.Report(machine, view);

        var source = new KvmDirtyPageSource(machine.Vm, machine.Slots, machine.VmmWrites, () => (ulong)machine.Telemetry.ProgressTotal);
        var dirty = new DirtyBitmap(source.PageCount);
        source.Harvest(dirty); // the fill and boot writes: not part of the steady state
        var clock = Stopwatch.StartNew();
        long totalDirty = 0, totalProgress = 0, samples = 0;
        while (clock.Elapsed < duration && !ct.IsCancellationRequested && !machine.Completion.IsCompleted)
        {
            Thread.Sleep(TimeSpan.FromSeconds(1));
            dirty.Clear();
            var h = source.Harvest(dirty);
            samples++;
            totalDirty += h.DirtyPages;
            totalProgress += (long)h.Progress;
            double secs = clock.Elapsed.TotalSeconds;
            view.Update($"{secs,6:0.0}s  progress {h.Progress,5}/s  dirty {h.DirtyPages,7} pages/s ({Units.FormatBytes(h.DirtyPages * (double)source.PageSize)}/s)  heartbeats {machine.Telemetry.HeartbeatCount}");
        }
        view.Done();
        double elapsed = clock.Elapsed.TotalSeconds;
        machine.Pause();
        Console.WriteLine($"ran {elapsed:0.0} s: progress {totalProgress / elapsed:0.0} units/s, dirty {totalDirty / elapsed:0} pages/s, " +
                          $"heartbeats {machine.Telemetry.HeartbeatCount}, continuity errors {machine.Telemetry.ContinuityErrors}, self-check errors {machine.Telemetry.SelfCheckErrors}");
        if (config.Workload == Workload.Replay) GuestRun.ReportReplay(machine);
        return GuestRun.Report(machine, view);
    }
}

/// <summary>Steps shared by the commands that run a guest.</summary>
internal static class GuestRun
{
    /// <summary>Waits until the guest has filled its memory, showing progress; false when the guest ended first.</summary>
    public static bool WaitReady(Machine machine, LiveView view, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (!machine.Telemetry.Ready)
        {
            if (machine.Completion.IsCompleted || ct.IsCancellationRequested) { view.Done(); return false; }
            view.Update($"filling guest memory... {clock.Elapsed.TotalSeconds:0.0}s");
            Thread.Sleep(200);
        }
        PageContent content = machine.Config.EffectivePageContent;
        view.Update($"guest ready after {clock.Elapsed.TotalSeconds:0.0}s ({machine.Telemetry.ReadyPages} pages of data; page content " +
                    (content.IsRandom ? "random, incompressible)" : $"LZ4 ratio {content})"));
        view.Done();
        return true;
    }

    /// <summary>One line on a replay guest: what it was given and how late.</summary>
    public static void ReportReplay(Machine machine)
    {
        var s = machine.ReplayStats;
        string loops = machine.Config.ReplayFeed is Replay.TraceReplayFeed f && f.Loops > 0 ? $", trace started over {f.Loops} time(s)" : "";
        Console.WriteLine($"replay: {s.Intervals} intervals ({s.Batches} batches, {s.Pages} page writes) into {machine.ReplayRegion?.Pages} pages at page {machine.ReplayRegion?.FirstPage}{loops}; " +
                          $"intervals started > 1 ms late {s.LateIntervals}, latest by {s.MaxLateUs / 1000.0:0.0} ms{(s.Ended ? "; trace ended, guest idle" : "")}");
    }

    /// <summary>Exit code: 0 when the guest is healthy (still running or exited cleanly, no self-check or continuity errors).</summary>
    public static int Report(Machine machine, LiveView view)
    {
        view.Done();
        if (machine.Completion.IsCompleted)
        {
            MachineExit exit = machine.Completion.Result;
            if (exit.Kind != MachineExitKind.Stopped && exit.GuestCode != GuestExitCode.Ok)
            {
                Console.Error.WriteLine($"error: {exit.Message}");
                return ExitCodes.GuestFailed;
            }
        }
        if (machine.Telemetry.SelfCheckErrors > 0 || machine.Telemetry.ContinuityErrors > 0)
        {
            Console.Error.WriteLine($"error: the guest reported {machine.Telemetry.SelfCheckErrors} self-check and {machine.Telemetry.ContinuityErrors} continuity errors");
            return ExitCodes.GuestUnhealthy;
        }
        return ExitCodes.Ok;
    }
}
