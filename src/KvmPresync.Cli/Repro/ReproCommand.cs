using System.CommandLine;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using KvmPresync.Kvm;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;

namespace KvmPresync.Cli.Repro;

/// <summary>
/// <c>kvmpresync repro</c>: the paper's experiment, side by side. For each workload and mode it boots a fresh guest in
/// a source process, a receiver in another process, syncs for the sync period, launches, and collects both sides'
/// figures. It drives the same <c>run --presync-to</c> / <c>receive</c> code users run — no second implementation.
/// </summary>
internal static class ReproCommand
{
    /// <summary>Each mode is named after what it runs: classic pre-copy, or the sync policy (run --policy) before launch.</summary>
    public static readonly string[] Modes = ["precopy", "slowstart", "predict+slowstart"];

    /// <summary>How long a pre-copy run lets the guest run before launch (its slowdown baseline).</summary>
    public const double PrecopyBaselineSeconds = 6; // covers the 5 s progress sample window

    /// <summary>The targets: our own KVM guests (the default), or libvirt domains on two private libvirt instances.</summary>
    public const string KvmTarget = "kvm", LibvirtTarget = "libvirt";

    /// <summary>
    /// One repro's settings. <paramref name="Target"/>: <see cref="KvmTarget"/> or <see cref="LibvirtTarget"/>;
    /// <paramref name="ModeList"/>: the modes to run, null for every mode of the target.
    /// </summary>
    /// <remarks>
    /// <paramref name="Workloads"/> are the names shown in outputs; <paramref name="WorkloadArgs"/> maps a name to what
    /// <c>run --workload</c> gets when it differs (<c>trace:FILE</c> workloads are named after the trace's file).
    /// </remarks>
    public sealed record Settings(string[] Workloads, long MemoryBytes, string Link, double LinkBitsPerSecond, int Runs, double SyncSeconds,
        string? Json, string? Plots, string Target = KvmTarget, IReadOnlyList<string>? ModeList = null,
        IReadOnlyDictionary<string, string>? WorkloadArgs = null, bool Oracle = true)
    {
        /// <summary>The launch-to-resume target of the sync modes' runs (null: run's default).</summary>
        public TimeSpan? LaunchTarget { get; init; }

        /// <summary>The launch-target sweep: extra predict+slowstart runs, one per target (<see cref="ReproLaunchTargets"/>).</summary>
        public IReadOnlyList<TimeSpan> LaunchTargets { get; init; } = [];

        /// <summary>The sync modes' <c>run --pause-at-quiet</c> (null: off).</summary>
        public TimeSpan? QuietWait { get; init; }

        /// <summary>--burst-clock off: the sync runs without timing bursts.</summary>
        public bool TimeBursts { get; init; } = true;

        /// <summary>The guests' <c>--page-content</c> (<c>random</c> or an LZ4 ratio); null = each workload's default.</summary>
        public string? PageContent { get; init; }

        /// <summary>The <c>--page-content</c> arguments every guest of this repro gets (none for the workloads' defaults).</summary>
        public IEnumerable<string> PageContentArgs => PageContent is null ? [] : ["--page-content", PageContent];

        /// <summary>Every mode run per workload and run: the table's modes, then the sweep's.</summary>
        public IEnumerable<string> RunModes => ModeNames.Concat(LaunchTargets.Select(ReproLaunchTargets.ModeFor));

        /// <summary>The <c>run --workload</c> argument for workload <paramref name="name"/>.</summary>
        public string WorkloadArg(string name) => WorkloadArgs is not null && WorkloadArgs.TryGetValue(name, out string? arg) ? arg : name;

        /// <summary>The modes run, in table order.</summary>
        public IReadOnlyList<string> ModeNames => ModeList ?? (Target == LibvirtTarget ? Libvirt.LibvirtReproModes.Known.Select(k => k.Name).ToArray() : Modes);

        /// <summary>The mode that sends nothing before launch: the slowdown baseline and the one the honesty check bounds.</summary>
        public string BaselineMode => Target == LibvirtTarget ? Libvirt.LibvirtReproModes.Baseline : "precopy";
    }

    /// <summary>The Linux guest domain template (contrib/linux-guest-domain.xml) has 256 MiB.</summary>
    private const long LibvirtGuestMemory = 256L << 20;

    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "15 s sync period, 1 run (what 'make run' does)" };
        var workloads = new Option<string>("--workloads") { Description = "Comma-separated workloads: text, audio, movie, database, idle, trace:FILE (a replay of a recorded dirty trace, named after the trace's file without its extension; --target kvm only)", DefaultValueFactory = _ => "text,audio,movie" };
        var memory = new Option<string?>("--memory", "-m") { Description = "Guest memory, e.g. 256M (default 256M; with trace:FILE workloads, every guest is as large as the largest trace needs if that is more; --target libvirt: 256M, the domain template's)" };
        var link = new Option<string>("--link-kind") { Description = "loopback (TCP on 127.0.0.1, in-process token bucket; --target libvirt: QEMU's migration bandwidth limit) or netns (two namespaces, veth, tc tbf; needs root)", DefaultValueFactory = _ => "loopback" };
        var rate = new Option<string>("--link-rate") { Description = "Link rate, e.g. 1gbit, 100mbit, 10MB/s", DefaultValueFactory = _ => "1gbit" };
        var runs = new Option<int?>("--runs") { Description = "Runs per workload and mode (default 3; --quick 1)" };
        var sync = new Option<double?>("--sync-seconds") { Description = "Sync period before launch, in seconds (default 60; --quick 15); precopy runs wait at most 6 s (their slowdown baseline); --target libvirt: every mode lets the guest run this long before launch" };
        var json = new Option<string?>("--json") { Description = "Write the results as JSON" };
        var plots = new Option<string?>("--plots") { Description = "Write PNG plots into this directory" };
        var target = new Option<string>("--target")
        {
            Description = "kvm: our own guests on /dev/kvm; libvirt: the Linux guest image as libvirt domains on two private libvirt instances on this host (needs root, libvirtd, QEMU, make guest-image)",
            DefaultValueFactory = _ => KvmTarget,
        };
        var modes = new Option<string?>("--modes")
        {
            Description = $"Comma-separated modes (default: all of the target's). kvm: {string.Join(", ", Modes)}; libvirt: {string.Join(", ", Libvirt.LibvirtReproModes.Known.Select(k => k.Name))}",
        };
        var noOracle = new Option<bool>("--no-oracle") { Description = "Do not record each workload's dirty trace nor simulate the policies and the future-knowledge bound (oracle) on it (--target kvm)" };
        var launchTarget = Commands.MigrationOptions.LaunchTarget();
        launchTarget.DefaultValueFactory = null;
        launchTarget.Description = "The launch-to-resume target of the slowstart and predict+slowstart runs (default: run's, 100ms)";
        var launchTargets = new Option<string?>("--launch-targets")
        {
            Description = "A sweep of launch targets, e.g. 10ms,25ms,50ms,100ms,200ms: per workload and run, one more predict+slowstart run at each; " +
                          "reported as the trade-off between sync traffic and launch-to-resume (table, JSON, and with --plots a curve per workload; --target kvm)",
        };
        var pauseAtQuiet = Commands.MigrationOptions.PauseAtQuiet();
        pauseAtQuiet.Description = "The sync modes' --pause-at-quiet (see 'kvmpresync run --help'), e.g. 40ms, or off; --target kvm";
        var burstClock = Commands.MigrationOptions.BurstClock();
        burstClock.Description = "The sync modes' --burst-clock (see 'kvmpresync run --help'): on or off; --target kvm";
        var image = new Option<string?>("--guest-image") { Description = "--target libvirt: the Linux guest image directory (default: build/guest-image, from make guest-image)" };
        var pageContent = new Option<string>("--page-content")
        {
            Description = "--target kvm: how compressible the guests' data pages are, as run --page-content: auto (default: each workload's real program's), random (incompressible) or an LZ4 compressed/raw ratio, e.g. 0.25",
            DefaultValueFactory = _ => "auto",
        };
        var cmd = new Command("repro", "Reproduce the paper's experiment: modes precopy (classic pre-copy) vs slowstart vs predict+slowstart (the sync policies), per workload, with the physical bound; --target libvirt: ours (presync+predict) beside stock virsh-precopy and virsh-postcopy of libvirt domains, heartbeat-verified")
        {
            quick, workloads, memory, link, rate, runs, sync, json, plots, target, modes, image, noOracle, launchTarget, launchTargets, pauseAtQuiet, burstClock, pageContent,
        };
        cmd.SetAction((r, ct) =>
        {
            bool q = r.GetValue(quick);
            string linkKind = r.GetValue(link)!.Trim().ToLowerInvariant();
            if (linkKind is not ("loopback" or "netns")) throw new ArgumentException($"--link-kind: '{linkKind}' is not loopback or netns");
            string targetKind = r.GetValue(target)!.Trim().ToLowerInvariant();
            if (targetKind is not (KvmTarget or LibvirtTarget)) throw new ArgumentException($"--target: '{targetKind}' is not {KvmTarget} or {LibvirtTarget}");
            string[]? modeList = r.GetValue(modes)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            (string[] names, Dictionary<string, string> args) = WorkloadNames(r.GetValue(workloads)!, targetKind);
            // Every guest of a repro has one size (the table's bound is computed from it): without --memory, 256M or what the
            // largest trace needs; a --memory too small for a trace is refused by its run, naming both sizes.
            long memoryBytes = r.GetValue(memory) is { } given ? Units.ParseSize(given, memory.Name)
                : args.Values.Select(a => Replay.TraceWorkload.AutoMemory(a[Replay.TraceWorkload.Prefix.Length..])).Append(256L << 20).Max();
            if (r.GetValue(memory) is not null)
                foreach (string a in args.Values) Replay.TraceWorkload.CheckMemory(a[Replay.TraceWorkload.Prefix.Length..], memoryBytes);
            var s = new Settings(names, memoryBytes, linkKind, Wire.LinkRate.Parse(r.GetValue(rate)!),
                r.GetValue(runs) ?? (q ? 1 : 3), r.GetValue(sync) ?? (q ? 15 : 60), r.GetValue(json), r.GetValue(plots), targetKind, modeList, args,
                Oracle: !r.GetValue(noOracle) && targetKind == KvmTarget)
            {
                LaunchTarget = r.GetValue(launchTarget) is { } lt ? Commands.MigrationOptions.ParseLaunchTarget(lt) : null,
                LaunchTargets = r.GetValue(launchTargets) is { } list ? ReproLaunchTargets.ParseList(list) : [],
                QuietWait = Commands.MigrationOptions.ParseQuietWait(r.GetValue(pauseAtQuiet)!),
                TimeBursts = Commands.MigrationOptions.ParseOnOff("--burst-clock", r.GetValue(burstClock)!),
                PageContent = GuestOptions.ParsePageContent(r.GetValue(pageContent)!)?.ToString(), // checked now, not in every run
            };
            if (targetKind == LibvirtTarget && s.PageContent is not null)
                throw new ArgumentException("--page-content applies to --target kvm runs (our own guests); the libvirt target runs the Linux guest image");
            if (targetKind == LibvirtTarget && (s.LaunchTarget is not null || s.LaunchTargets.Count > 0 || s.QuietWait is not null))
                throw new ArgumentException("--launch-target, --launch-targets and --pause-at-quiet apply to --target kvm runs");
            if (s.Runs < 1) throw new ArgumentException("--runs must be at least 1");
            if (s.SyncSeconds < 0) throw new ArgumentException("--sync-seconds must not be negative");
            if (targetKind == LibvirtTarget)
            {
                if (s.MemoryBytes != LibvirtGuestMemory)
                    throw new ArgumentException($"--memory: --target libvirt runs the Linux guest domain of contrib/linux-guest-domain.xml, which has {Units.FormatBytes(LibvirtGuestMemory)}");
                return RunLibvirtAsync(s, Libvirt.LibvirtReproModes.Select(modeList), r.GetValue(image), ct);
            }
            foreach (string m in s.ModeNames)
                if (!Modes.Contains(m)) throw new ArgumentException($"--modes: unknown mode '{m}' for --target kvm (known: {string.Join(", ", Modes)})");
            return RunAsync(s, ct);
        });
        return cmd;
    }

    /// <summary>
    /// The names of <c>--workloads</c> entries as outputs show them, and the <c>run --workload</c> argument of each trace
    /// (<c>trace:</c> + its full path); a trace file that cannot be read, or two entries with one name, are refused now.
    /// </summary>
    private static (string[] Names, Dictionary<string, string> Args) WorkloadNames(string list, string target)
    {
        var names = new List<string>();
        var args = new Dictionary<string, string>();
        foreach (string w in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string name = w;
            if (Replay.TraceWorkload.TryParse(w, out string path))
            {
                if (target != KvmTarget) throw new ArgumentException($"--workloads {w}: trace replays run on our own KVM guests only (--target {KvmTarget})");
                name = Replay.TraceWorkload.NameOf(w);
                args[name] = Replay.TraceWorkload.Prefix + Path.GetFullPath(path);
            }
            else if (w is not ("text" or "audio" or "movie" or "database" or "idle"))
                throw new ArgumentException($"--workloads: unknown workload '{w}' (text, audio, movie, database, idle or trace:FILE)");
            if (names.Contains(name))
                throw new ArgumentException($"--workloads: two entries are both named '{name}' in the results (a trace is named after its file); give each a distinct trace or workload");
            names.Add(name);
        }
        return ([.. names], args);
    }

    private static async Task<int> RunAsync(Settings s, CancellationToken ct)
    {
        if (!KvmSystem.IsAvailable(out string why)) throw new InvalidOperationException($"repro needs /dev/kvm: {why}");
        string exe = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find the kvmpresync executable");
        string work = Directory.CreateTempSubdirectory("kvmpresync-repro").FullName;
        string psk = Path.Combine(work, "psk");
        File.WriteAllBytes(psk, System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(psk, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        NetnsLink? netns = s.Link == "netns" ? NetnsLink.Up(s.LinkBitsPerSecond) : null;
        var results = new List<ReproModeRun>();
        var simulated = new Dictionary<string, ReproOracle.Simulated>();
        string? traceDir = TraceDirectory(s);
        var total = Stopwatch.StartNew();
        try
        {
            int n = 0, count = s.Workloads.Length * s.RunModes.Count() * s.Runs;
            foreach (string workload in s.Workloads)
            {
                if (s.Oracle && await SimulateAsync(exe, traceDir ?? work, traceDir is not null, s, workload, total, ct) is { } sim)
                    simulated[workload] = sim;
                for (int run = 1; run <= s.Runs; run++)
                    foreach (string mode in s.RunModes)
                    {
                        n++;
                        Console.WriteLine(mode == "precopy"
                            ? $"[{n}/{count}] {workload} {mode} run {run}: {Math.Min(s.SyncSeconds, PrecopyBaselineSeconds):0} s of the guest running undisturbed (baseline), then launch ({total.Elapsed.TotalSeconds:0} s elapsed)"
                            : $"[{n}/{count}] {workload} {mode} run {run}: {s.SyncSeconds:0} s of sync, then launch ({total.Elapsed.TotalSeconds:0} s elapsed)");
                        ReproModeRun r = await OneAsync(exe, work, psk, netns, s, workload, mode, run, ct);
                        results.Add(r);
                        MigrationResult m = r.Result;
                        Console.WriteLine(m.Succeeded
                            ? $"        launch-to-resume {m.LaunchToResumeMs:0.0} ms, downtime {m.DowntimeMs:0.0} ms, sync {Units.FormatBytes(m.SyncBytes)}, after launch {Units.FormatBytes(m.LaunchBytes)}, verified" +
                              (m.ReadinessAtLaunch is { } e ? $"; estimated before launch {Commands.PresyncRun.ReadinessText(e.Estimate)}" : "")
                            : $"        FAILED: {m.Failure}");
                        foreach (string line in Commands.PresyncRun.BreakdownLines(m)) Console.WriteLine($"        {line}");
                    }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Console.Error.WriteLine($"kvmpresync: repro cancelled; the run's source and receiver processes were stopped; reporting the {results.Count} run(s) that ended");
            if (results.Count > 0) await ReportAsync(s, results, total, CancellationToken.None, simulated);
            return ExitCodes.Interrupted;
        }
        finally
        {
            netns?.Dispose();
            Directory.Delete(work, recursive: true);
        }
        return await ReportAsync(s, results, total, ct, simulated);
    }

    /// <summary>Where recorded traces are kept: beside --json (<c>NAME.traces/</c>), else in --plots (<c>traces/</c>); null = not kept.</summary>
    private static string? TraceDirectory(Settings s) =>
        s.Json is not null ? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(s.Json))!, Path.GetFileNameWithoutExtension(s.Json) + ".traces")
        : s.Plots is not null ? Path.Combine(Path.GetFullPath(s.Plots), "traces")
        : null;

    /// <summary>
    /// Records the dirty trace of <paramref name="workload"/>'s guest (<c>trace record</c>, the same workload argument,
    /// memory and default seed as the live runs, for the sync period) and simulates the policies on it
    /// (<see cref="ReproOracle"/>); null, with the reason printed, when the recording fails.
    /// </summary>
    private static async Task<ReproOracle.Simulated?> SimulateAsync(string exe, string dir, bool kept, Settings s, string workload, Stopwatch total, CancellationToken ct)
    {
        Directory.CreateDirectory(dir);
        string tag = string.Concat(workload.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_'));
        string trace = Path.Combine(dir, tag + ".kptrace");
        string log = Path.Combine(dir, tag + ".record.log");
        string seconds = s.SyncSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Console.WriteLine($"[{workload}] recording the workload's dirty trace for {s.SyncSeconds:0} s (trace record), then simulating the policies and the oracle on it ({total.Elapsed.TotalSeconds:0} s elapsed)");
        using (Process rec = Start((exe, ["trace", "record", "--workload", s.WorkloadArg(workload), "--memory",
                   s.MemoryBytes.ToString(System.Globalization.CultureInfo.InvariantCulture), "--seconds", seconds, "-o", trace, .. s.PageContentArgs]), log))
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(s.SyncSeconds + 120));
            try { await rec.WaitForExitAsync(timeout.Token); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested) { rec.Kill(true); }
            if (!rec.HasExited || rec.ExitCode != 0 || !File.Exists(trace))
            {
                Console.WriteLine($"        trace record failed, no simulation for {workload}: {Tail(log)}");
                return null;
            }
        }
        if (!kept) File.Delete(log);
        ReproOracle.Simulated sim = ReproOracle.Simulate(trace, s.MemoryBytes, s.LinkBitsPerSecond, s.SyncSeconds, keep: kept);
        Console.WriteLine($"        {sim.Comparison.Saturation.Describe()}; " + string.Join(", ", sim.Comparison.Outcomes.Select(o => $"{o.Policy} {Units.FormatBytes(o.SyncBytes)}")));
        return sim;
    }

    private static async Task<int> RunLibvirtAsync(Settings s, IReadOnlyList<Libvirt.ILibvirtReproMode> modes, string? image, CancellationToken ct)
    {
        if (KvmPresync.Libvirt.Testbed.PrivateLibvirtDaemon.Unavailable() is { } why)
            throw new InvalidOperationException($"repro --target libvirt starts two private libvirt instances on this host: {why}");
        image ??= Libvirt.LibvirtRepro.DefaultImageDirectory()
            ?? throw new InvalidOperationException("repro --target libvirt needs the Linux guest image: build it with `make guest-image` (build/guest-image) or pass --guest-image DIR");
        if (KvmPresync.Libvirt.Testbed.LinuxGuestDomain.ImageProblem(image) is { } problem) throw new InvalidOperationException(problem);
        NetnsLink? netns = s.Link == "netns" ? NetnsLink.Up(s.LinkBitsPerSecond) : null;
        var link = netns is null
            ? new Libvirt.LibvirtLink("loopback", s.LinkBitsPerSecond, "127.0.0.1", null, null)
            : new Libvirt.LibvirtLink("netns", s.LinkBitsPerSecond, NetnsLink.DestinationAddress, NetnsLink.SourceNamespace, NetnsLink.DestinationNamespace);
        var total = Stopwatch.StartNew();
        var results = new List<ReproModeRun>();
        try
        {
            // --json is rewritten after every run: a repro killed outright keeps what it measured
            await Libvirt.LibvirtRepro.RunAsync(s, modes, image, link, Console.Error, results, ct,
                afterEachRun: s.Json is null ? null : () => File.WriteAllText(s.Json, JsonText(ReproReport.Build(s, results))));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Console.Error.WriteLine($"kvmpresync: repro cancelled; the run's libvirt instances and guest were removed; reporting the {results.Count} run(s) that ended");
            if (results.Count > 0) await ReportAsync(s, results, total, CancellationToken.None);
            return ExitCodes.Interrupted;
        }
        finally
        {
            netns?.Dispose();
            foreach (var mode in modes) (mode as IDisposable)?.Dispose();
        }
        return await ReportAsync(s, results, total, ct);
    }

    private static string JsonText(ReproReport report) => JsonSerializer.Serialize(report.ToJson(), new JsonSerializerOptions { WriteIndented = true });

    private static async Task<int> ReportAsync(Settings s, List<ReproModeRun> results, Stopwatch total, CancellationToken ct,
        IReadOnlyDictionary<string, ReproOracle.Simulated>? simulated = null)
    {
        var report = ReproReport.Build(s, results, simulated);
        Console.WriteLine();
        report.WriteTable(Console.Out);
        if (s.Json is not null)
        {
            await File.WriteAllTextAsync(s.Json, JsonText(report), ct);
            Console.WriteLine($"wrote {s.Json}");
        }
        if (s.Plots is not null)
            foreach (string path in ReproPlots.Write(s.Plots, results)) Console.WriteLine($"wrote {path}");
        Console.WriteLine($"repro took {total.Elapsed.TotalSeconds:0} s");
        if (report.HonestyFailures.Count > 0)
        {
            foreach (string f in report.HonestyFailures) Console.Error.WriteLine($"kvmpresync: honesty check failed: {f}");
            return ExitCodes.HonestyCheckFailed;
        }
        return results.All(r => r.Result.Succeeded && r.Result.Verified) ? ExitCodes.Ok : ExitCodes.MigrationFailed;
    }

    private static async Task<ReproModeRun> OneAsync(string exe, string work, string psk, NetnsLink? netns, Settings s, string workload, string mode,
        int run, CancellationToken ct)
    {
        string tag = $"{string.Concat(workload.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_'))}-{mode.Replace('+', '_')}-{run}";
        string json = Path.Combine(work, tag + ".json");
        int port = netns is null ? FreePort() : 7700;
        string listen = netns is null ? $"127.0.0.1:{port}" : $"{NetnsLink.DestinationAddress}:{port}";
        string bits = $"{(long)s.LinkBitsPerSecond}bit";
        string rate = netns is null ? bits : "none";
        var rxArgs = new List<string> { "receive", "--once", "--listen", listen, "--psk-file", psk, "--run-seconds", "1", "--link-rate", rate };
        // Pre-copy sends nothing before launch; its waiting period only measures the guest's undisturbed work rate
        // (the slowdown baseline, sampled over its first 5 s).
        double launchAfter = mode == "precopy" ? Math.Min(s.SyncSeconds, PrecopyBaselineSeconds) : s.SyncSeconds;
        var txArgs = new List<string> { "run", "--workload", s.WorkloadArg(workload), "--memory", s.MemoryBytes.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        txArgs.AddRange(s.PageContentArgs);
        txArgs.AddRange([
            "--presync-to", listen, "--psk-file", psk, "--launch-after", launchAfter.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--json", json, "--link-rate", rate, "--bandwidth", bits]);
        txArgs.AddRange(mode switch
        {
            "precopy" => ["--no-presync", "--policy", "none", "--max-final-duration", "60s"],
            _ when ReproLaunchTargets.TryParse(mode, out TimeSpan swept) =>
                ["--policy", ReproLaunchTargets.SweptPolicy, "--launch-target", $"{swept.TotalMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}ms"],
            _ => ["--policy", mode], // the other modes are named after the policy they run
        });
        if (mode != "precopy" && !ReproLaunchTargets.TryParse(mode, out _) && s.LaunchTarget is { } target)
            txArgs.AddRange(["--launch-target", $"{target.TotalMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}ms"]);
        if (mode != "precopy" && !s.TimeBursts) txArgs.AddRange(["--burst-clock", "off"]);
        if (mode != "precopy" && s.QuietWait is { } quiet)
            txArgs.AddRange(["--pause-at-quiet", $"{quiet.TotalMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}ms"]);
        using Process rx = Start(netns?.Wrap(NetnsLink.DestinationNamespace, exe, rxArgs) ?? (exe, rxArgs), Path.Combine(work, tag + ".rx.log"));
        await Task.Delay(300, ct); // the receiver binds in well under this; run also retries a refused connect
        using Process tx = Start(netns?.Wrap(NetnsLink.SourceNamespace, exe, txArgs) ?? (exe, txArgs), Path.Combine(work, tag + ".tx.log"));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(s.SyncSeconds + 120));
        try
        {
            await tx.WaitForExitAsync(timeout.Token);
            await rx.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            tx.Kill(true);
            rx.Kill(true);
            ct.ThrowIfCancellationRequested(); // interrupted: no result for this run, and no further runs
        }
        MigrationResult result = File.Exists(json)
            ? JsonSerializer.Deserialize<MigrationResult>(await File.ReadAllTextAsync(json, ct), Commands.PresyncRun.JsonOptions) ?? Failed("empty result file")
            : Failed($"the source process wrote no result: {Tail(Path.Combine(work, tag + ".tx.log"))} | receiver: {Tail(Path.Combine(work, tag + ".rx.log"))}");
        if (result.Succeeded && rx.HasExited && rx.ExitCode != 0)
            result = result with { Succeeded = false, Failure = $"the destination guest was not healthy after resume: {Tail(Path.Combine(work, tag + ".rx.log"))}" };
        return new ReproModeRun { Workload = workload, Mode = mode, Run = run, Result = result, ProgressRateDuringSync = result.ProgressRateDuringSync };
    }

    private static MigrationResult Failed(string why) => new() { Succeeded = false, Failure = why };

    private static string Tail(string path) =>
        File.Exists(path) ? string.Join(" / ", File.ReadAllLines(path).TakeLast(3)) : "(no output)";

    private static Process Start((string File, List<string> Args) command, string log)
    {
        var psi = new ProcessStartInfo(command.File) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (string a in command.Args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {command.File}");
        var writer = new StreamWriter(log) { AutoFlush = true };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (writer) writer.WriteLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (writer) writer.WriteLine(e.Data); };
        p.Exited += (_, _) => { lock (writer) writer.Flush(); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static int FreePort()
    {
        using var sock = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        sock.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)sock.LocalEndPoint!).Port;
    }
}

/// <summary>The netns link for the duration of a repro (tools/netns-link.sh), removed on dispose.</summary>
internal sealed class NetnsLink : IDisposable
{
    public const string SourceNamespace = "kp-src", DestinationNamespace = "kp-dst", DestinationAddress = "10.231.0.2";
    private readonly string _script;

    private NetnsLink(string script) => _script = script;

    public static NetnsLink Up(double bitsPerSecond)
    {
        if (Environment.UserName != "root")
            throw new InvalidOperationException("--link-kind netns creates network namespaces and needs root; run as root or use --link-kind loopback");
        string script = FindScript();
        Run(script, "up", $"{(long)bitsPerSecond}bit");
        return new NetnsLink(script);
    }

    public (string, List<string>) Wrap(string ns, string exe, List<string> args) => ("ip", ["netns", "exec", ns, exe, .. args]);

    private static string FindScript()
    {
        for (string? d = AppContext.BaseDirectory; d is not null; d = Path.GetDirectoryName(d))
        {
            string candidate = Path.Combine(d, "tools", "netns-link.sh");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("tools/netns-link.sh not found above the kvmpresync executable; run repro from the repository's build/");
    }

    private static void Run(string script, params string[] args)
    {
        var psi = new ProcessStartInfo(script) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"tools/netns-link.sh {string.Join(' ', args)} failed: {output.Trim()}");
    }

    public void Dispose() => Run(_script, "down");
}
