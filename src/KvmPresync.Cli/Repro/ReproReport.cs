using System.Text.Json.Nodes;

namespace KvmPresync.Cli.Repro;

/// <summary>Aggregates repro runs into the paper-vs-ours table, the JSON document and the honesty checks.</summary>
internal sealed class ReproReport
{
    /// <summary>The paper's figures (Tang et al., CIT 2012): sync-traffic reduction per application, launch times.</summary>
    private static readonly Dictionary<string, double> PaperReduction = new() { ["text"] = 50.5, ["audio"] = 63.9, ["movie"] = 65.6 };
    private const string PaperPrecopy = "≥ 7000 ms", PaperPresync = "≤ 1000 ms";

    private readonly ReproCommand.Settings _s;
    private readonly IReadOnlyList<ReproModeRun> _runs;
    private readonly IReadOnlyDictionary<string, ReproOracle.Simulated> _simulated;

    private ReproReport(ReproCommand.Settings s, IReadOnlyList<ReproModeRun> runs, IReadOnlyDictionary<string, ReproOracle.Simulated>? simulated)
    {
        _s = s;
        _runs = runs;
        _simulated = simulated ?? new Dictionary<string, ReproOracle.Simulated>();
    }

    public List<string> HonestyFailures { get; } = [];

    /// <summary>Moving the guest's memory once at the link rate: no pre-copy can launch faster than its data moves.</summary>
    private double PhysicalBoundMs => _s.MemoryBytes * 8.0 / _s.LinkBitsPerSecond * 1000;

    /// <param name="simulated">Per workload, the policies simulated on its recorded trace (<see cref="ReproOracle"/>); none for --target libvirt.</param>
    public static ReproReport Build(ReproCommand.Settings s, IReadOnlyList<ReproModeRun> runs, IReadOnlyDictionary<string, ReproOracle.Simulated>? simulated = null)
    {
        var report = new ReproReport(s, runs, simulated);
        foreach (ReproModeRun r in runs.Where(r => r.Mode == s.BaselineMode && r.Result.Succeeded))
        {
            // what actually crossed the link after launch bounds pre-copy's launch-to-resume from below
            double bound = r.Result.LaunchBytes * 8.0 / s.LinkBitsPerSecond * 1000;
            if (r.Result.LaunchToResumeMs < bound * 0.98)
                report.HonestyFailures.Add($"{r.Workload} {r.Mode} run {r.Run}: launch-to-resume {r.Result.LaunchToResumeMs:0} ms is below the {bound:0} ms needed to move its {r.Result.LaunchBytes} bytes at the link rate — the link model is wrong");
        }
        return report;
    }

    private IEnumerable<ReproModeRun> Of(string workload, string mode) => _runs.Where(r => r.Workload == workload && r.Mode == mode);

    private static (double Median, double Min, double Max)? Stats(IEnumerable<double> values)
    {
        double[] v = values.OrderBy(x => x).ToArray();
        if (v.Length == 0) return null;
        double median = v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
        return (median, v[0], v[^1]);
    }

    /// <summary>
    /// The guest's work rate over the first 5 s after connect, in the baseline (pre-copy) run (nothing sent) — compared with the
    /// same window of the sync runs: seeded guests follow the same schedule, so bursty workloads (text) compare like
    /// for like (a 5 s window against a 60 s average would not).
    /// </summary>
    private double? BaselineProgress(string workload, int run) =>
        Of(workload, _s.BaselineMode).FirstOrDefault(r => r.Run == run)?.Result.ProgressRateFirstSeconds is { } b && b > 0 ? b : null;

    private IEnumerable<double> Slowdowns(string workload, string mode) =>
        Of(workload, mode).Where(r => r.Result.Succeeded)
            .Select(r => BaselineProgress(workload, r.Run) is { } b && r.Result.ProgressRateFirstSeconds is { } p ? Math.Max(0, (b - p) / b * 100) : double.NaN)
            .Where(x => !double.IsNaN(x));

    /// <summary>Sync traffic after the initial full copy: what a policy can save on (the copy itself costs every policy the same).</summary>
    private static double? Steady(ReproModeRun r) =>
        r.Result.InitialCopyBytes is { } initial ? r.Result.SyncBytes - initial : null;

    private static IEnumerable<double> SteadyOf(IEnumerable<ReproModeRun> runs) =>
        runs.Where(r => r.Result.Succeeded).Select(Steady).Where(x => x is not null).Select(x => x!.Value);

    /// <summary>Reduction of steady-state sync bytes, predict+slowstart vs slowstart (medians).</summary>
    public double? Reduction(string workload)
    {
        var plain = Stats(SteadyOf(Of(workload, "slowstart")));
        var predict = Stats(SteadyOf(Of(workload, "predict+slowstart")));
        if (plain is null || predict is null || plain.Value.Median <= 0) return null;
        return (plain.Value.Median - predict.Value.Median) / plain.Value.Median * 100;
    }

    /// <summary>
    /// Live slowstart's steady-state rate: its steady bytes over the time from the round that completed the first pass
    /// to the last sync round (median over runs); null without a completed first pass.
    /// </summary>
    public double? LiveSlowstartSteadyRate(string workload) =>
        Stats(Of(workload, "slowstart").Where(r => r.Result.Succeeded).Select(SteadyRate).OfType<double>())?.Median;

    private static double? SteadyRate(ReproModeRun r)
    {
        if (r.Result.InitialCopyBytes is not { } initial) return null;
        var sync = r.Result.Rounds.Where(x => x.Phase == Engine.RoundPhase.Sync).ToList();
        long sent = 0;
        double? passEnd = null;
        foreach (Engine.RoundRecord x in sync)
        {
            sent += x.SentBytes;
            if (sent >= initial) { passEnd = x.TimeMs; break; }
        }
        if (passEnd is not { } start || sync.Count == 0) return null;
        double seconds = (sync[^1].TimeMs - start) / 1000;
        return seconds >= ReproOracle.MinLiveSteadySeconds ? (r.Result.SyncBytes - initial) / seconds : null;
    }

    /// <summary>The live reduction set against the simulated oracle's, for a workload with a simulation.</summary>
    public ReproOracle.LiveAgainstOracle? AgainstOracle(string workload) =>
        _simulated.TryGetValue(workload, out ReproOracle.Simulated? sim)
            ? ReproOracle.Compare(sim, Reduction(workload), LiveSlowstartSteadyRate(workload))
            : null;

    public void WriteTable(TextWriter o)
    {
        bool libvirt = _s.Target == ReproCommand.LibvirtTarget;
        string guests = libvirt
            ? "libvirt domains (the Linux guest image under QEMU TCG, a fresh guest per run, two private libvirt instances)"
            : "guests";
        string shaping = libvirt && _s.Link == "loopback" ? " (QEMU's migration bandwidth limit)" : "";
        o.WriteLine($"KvmPresync repro — {Units.FormatBytes(_s.MemoryBytes)} {guests}, {_s.Link} link at {Wire.LinkRate.Format((long)_s.LinkBitsPerSecond)}{shaping}, " +
                    $"{_s.SyncSeconds:0} s sync period, {_s.Runs} run(s); medians [min–max]");
        o.WriteLine($"physical bound: moving {Units.FormatBytes(_s.MemoryBytes)} at the link rate takes {PhysicalBoundMs:0} ms; " +
                    "pre-copy sends only non-zero pages, so its own bound (shown beside it) is its after-launch bytes at the link rate");
        o.WriteLine();
        o.WriteLine("sync MiB = all bytes sent before launch; steady MiB = of those, after the initial full copy (what prediction can save)");
        o.WriteLine("slowdown % = the guest's work rate over the sync period against the same guest's just before presync (nothing sent; in precopy, a null test); " +
                    "vs precopy % = its first 5 s against the same seed's precopy run");
        if (libvirt)
            o.WriteLine("libvirt target: downtime = libvirt's job stats; console stall = the same seen on the serial console (host gap − guest gap between " +
                        "the last source and first destination heartbeat, ±10 ms); verified = the KPHB chain continues on the destination console");
        o.WriteLine($"{"workload",-8} {"mode",-18} {"launch→resume ms",-24} {"downtime ms",-20} {(libvirt ? $"{"console stall ms",-20} " : "")}{"sync MiB",-10} {"steady MiB",-11} {"after launch MiB",-17} {"slowdown %",-18} {"vs precopy %",-13} {"verified",-9} paper");
        foreach (string w in _s.Workloads)
        {
            foreach (string mode in _s.ModeNames)
            {
                var ok = Of(w, mode).Where(r => r.Result.Succeeded).ToList();
                var l2r = Stats(ok.Select(r => r.Result.LaunchToResumeMs));
                var down = Stats(ok.Select(r => r.Result.DowntimeMs));
                var sync = Stats(ok.Select(r => r.Result.SyncBytes / 1048576.0));
                var after = Stats(ok.Select(r => r.Result.LaunchBytes / 1048576.0));
                var steady = Stats(SteadyOf(ok).Select(b => b / 1048576.0));
                var slow = Stats(Slowdowns(w, mode));
                int all = Of(w, mode).Count();
                string verified = ok.Count == all && ok.All(r => r.Result.Verified) ? "yes" : $"{ok.Count(r => r.Result.Verified)}/{all}";
                string bound = Stats(ok.Select(r => r.Result.LaunchBytes * 8000.0 / _s.LinkBitsPerSecond)) is { } b ? $"{b.Median:0}" : "n/a";
                bool baseline = mode == _s.BaselineMode;
                string paper = baseline ? $"{PaperPrecopy} (bound {bound} ms)" : mode is "predict+slowstart" or "presync+predict" ? PaperPresync : "";
                string stall = libvirt ? $"{Fmt(Stats(ok.Select(r => r.Libvirt?.Heartbeats.StallMs).OfType<double>())),-20} " : "";
                o.WriteLine($"{w,-8} {mode,-18} {Fmt(l2r),-24} {Fmt(down),-20} {stall}{Fmt(sync, "0.0"),-10} {(baseline ? "-" : Fmt(steady, "0.00")),-11} {Fmt(after, "0.0"),-17} {Fmt(Stats(ReproSlowdown.Percents(ok)), "0.00"),-18} {(baseline ? "baseline" : Fmt(slow, "0.0")),-13} {verified,-9} {paper}");
                foreach (ReproModeRun failed in Of(w, mode).Where(r => !r.Result.Succeeded))
                    o.WriteLine($"{"",-8} {"",-18} run {failed.Run} failed: {failed.Result.Failure}");
            }
            string red = Reduction(w) is { } r ? $"{r:0.0} %" : "n/a";
            var pre = Stats(Of(w, _s.BaselineMode).Where(x => x.Result.Succeeded).Select(x => x.Result.LaunchToResumeMs));
            string oursMode = libvirt ? "presync+predict" : "predict+slowstart";
            var ours = Stats(Of(w, oursMode).Where(x => x.Result.Succeeded).Select(x => x.Result.LaunchToResumeMs));
            string speedup = pre is { } p && ours is { } q && q.Median > 0 ? $"{p.Median / q.Median:0.0}x" : "n/a";
            if (libvirt)
                o.WriteLine($"{"",-8} launch speed-up of {oursMode} vs {_s.BaselineMode}: {speedup} (paper ≥ 7x)");
            else
                o.WriteLine($"{"",-8} steady-state sync-traffic reduction predict+slowstart vs slowstart: {red} ({(PaperReduction.TryGetValue(w, out double paper) ? $"paper {paper:0.0} %" : "no paper figure")}); launch speed-up vs precopy: {speedup} (paper ≥ 7x)");
            if (_simulated.TryGetValue(w, out ReproOracle.Simulated? sim))
                ReproOracle.WriteBlock(o, new string(' ', 9), sim, AgainstOracle(w)!);
        }
        ReproLaunchTargets.WriteTable(o, _runs, _s.Workloads);
        ReproReadiness.WriteTable(o, _runs, _s.Workloads);
    }

    private static string Fmt((double Median, double Min, double Max)? s, string f = "0.0") =>
        s is not { } v ? "n/a" : v.Min == v.Max ? v.Median.ToString(f, System.Globalization.CultureInfo.InvariantCulture)
            : $"{v.Median.ToString(f, System.Globalization.CultureInfo.InvariantCulture)} [{v.Min.ToString(f, System.Globalization.CultureInfo.InvariantCulture)}–{v.Max.ToString(f, System.Globalization.CultureInfo.InvariantCulture)}]";

    public JsonObject ToJson()
    {
        var workloads = new JsonObject();
        foreach (string w in _s.Workloads)
        {
            var wj = new JsonObject();
            foreach (string mode in _s.ModeNames)
            {
                var ok = Of(w, mode).Where(r => r.Result.Succeeded).ToList();
                var modeJson = wj[mode] = new JsonObject
                {
                    ["launchToResumeMs"] = Json(Stats(ok.Select(r => r.Result.LaunchToResumeMs))),
                    ["downtimeMs"] = Json(Stats(ok.Select(r => r.Result.DowntimeMs))),
                    ["syncBytes"] = Json(Stats(ok.Select(r => (double)r.Result.SyncBytes))),
                    ["steadySyncBytes"] = Json(Stats(SteadyOf(ok))),
                    ["launchBytes"] = Json(Stats(ok.Select(r => (double)r.Result.LaunchBytes))),
                    ["slowdownPercent"] = mode == _s.BaselineMode ? Json((0, 0, 0)) : Json(Stats(Slowdowns(w, mode))),
                    ["guestSlowdownPercent"] = Json(Stats(ReproSlowdown.Percents(ok))),
                    ["verified"] = ok.Count == Of(w, mode).Count() && ok.Count > 0 && ok.All(r => r.Result.Verified),
                    ["runs"] = new JsonArray(Of(w, mode).Select(r => (JsonNode)new JsonObject
                    {
                        ["run"] = r.Run,
                        ["succeeded"] = r.Result.Succeeded,
                        ["failure"] = r.Result.Failure,
                        ["launchToResumeMs"] = r.Result.LaunchToResumeMs,
                        ["downtimeMs"] = r.Result.DowntimeMs,
                        ["syncBytes"] = r.Result.SyncBytes,
                        ["initialCopyBytes"] = r.Result.InitialCopyBytes,
                        ["launchBytes"] = r.Result.LaunchBytes,
                        ["readinessAtLaunch"] = r.Result.ReadinessAtLaunch is { } e ? new JsonObject
                        {
                            ["estimatedLaunchToResumeMs"] = e.Estimate.LaunchToResumeMs,
                            ["estimatedDowntimeMs"] = e.Estimate.DowntimeMs,
                            ["estimatedBytes"] = e.Estimate.Bytes,
                            ["launchToResumeErrorMs"] = e.LaunchToResumeErrorMs,
                            ["downtimeErrorMs"] = e.DowntimeErrorMs,
                        } : null,
                        ["launch"] = r.Result.Launch is { } lb ? new JsonObject
                        {
                            ["syncEndMs"] = lb.SyncEndMs,
                            ["liveMs"] = lb.LiveMs,
                            ["liveBytes"] = lb.LiveBytes,
                            ["harvestMs"] = lb.HarvestMs,
                            ["liveRounds"] = r.Result.FinalLiveRounds,
                        } : null,
                        ["downtime"] = r.Result.Downtime is { } db ? new JsonObject
                        {
                            ["finalDeltaMs"] = db.FinalDeltaMs,
                            ["digestMs"] = db.DigestMs,
                            ["stateMs"] = db.StateMs,
                            ["destinationMs"] = db.DestinationMs,
                        } : null,
                        ["progressRateDuringSync"] = r.ProgressRateDuringSync,
                        ["progressRateFirstSeconds"] = r.Result.ProgressRateFirstSeconds,
                        ["guestSlowdown"] = ReproSlowdown.RunJson(r),
                        ["rounds"] = r.Result.Rounds.Count,
                        ["libvirt"] = r.Libvirt is { } l ? LibvirtJson(l) : null,
                    }).ToArray()),
                };
                if (_s.Target == ReproCommand.LibvirtTarget)
                    modeJson["consoleStallMs"] = Json(Stats(ok.Select(r => r.Libvirt?.Heartbeats.StallMs).OfType<double>()));
            }
            wj["reductionPercent"] = Reduction(w);
            wj["paperReductionPercent"] = PaperReduction.TryGetValue(w, out double paperPercent) ? paperPercent : null;   // none for database
            if (_simulated.TryGetValue(w, out ReproOracle.Simulated? sim))
                wj["simulated"] = ReproOracle.ToJson(sim, AgainstOracle(w)!);
            if (_s.LaunchTargets.Count > 0) wj["launchTargetSweep"] = ReproLaunchTargets.ToJson(_runs, w);
            wj["readiness"] = ReproReadiness.ToJson(_runs, w);
            workloads[w] = wj;
        }
        return new JsonObject
        {
            ["target"] = _s.Target,
            ["modes"] = new JsonArray(_s.ModeNames.Select(m => (JsonNode)JsonValue.Create(m)!).ToArray()),
            ["link"] = new JsonObject { ["kind"] = _s.Link, ["rateBitsPerSec"] = _s.LinkBitsPerSecond },
            ["memoryBytes"] = _s.MemoryBytes,
            ["syncSeconds"] = _s.SyncSeconds,
            ["runs"] = _s.Runs,
            ["physicalBoundMs"] = PhysicalBoundMs,
            ["workloads"] = workloads,
            ["honestyFailures"] = new JsonArray(HonestyFailures.Select(f => (JsonNode)JsonValue.Create(f)!).ToArray()),
        };
    }

    /// <summary>A libvirt run's own figures: the heartbeat handover, libvirt's downtime and job stats, the migrate call's return.</summary>
    private static JsonObject LibvirtJson(Libvirt.LibvirtRunDetail l)
    {
        var hb = l.Heartbeats;
        var stats = new JsonObject();
        foreach (var (name, value) in l.JobStats ?? new Dictionary<string, object>())
            stats[name] = value switch { ulong u => u, long v => v, int i => i, uint u32 => u32, double d => d, bool b => b, _ => value.ToString() };
        return new JsonObject
        {
            ["domain"] = l.Domain,
            ["bootMs"] = l.BootMs,
            ["destinationRunningReason"] = l.DestinationRunningReason,
            ["reportedDowntimeMs"] = l.ReportedDowntimeMs,
            ["migrateCallMs"] = l.MigrateCallMs,
            ["heartbeats"] = new JsonObject
            {
                ["verified"] = hb.Verified,
                ["failure"] = hb.Failure,
                ["onSource"] = hb.SourceHeartbeats,
                ["onDestination"] = hb.DestinationHeartbeats,
                ["lastSourceSeq"] = hb.LastOnSource?.Seq,
                ["firstDestinationSeq"] = hb.FirstOnDestination?.Seq,
                ["hostGapMs"] = hb.HostGapMs,
                ["guestGapMs"] = hb.GuestGapMs,
                ["stallMs"] = hb.StallMs,
                ["gaps"] = new JsonArray(hb.Gaps.Select(g => (JsonNode)JsonValue.Create(g)!).ToArray()),
            },
            ["jobStats"] = stats,
        };
    }

    private static JsonNode? Json((double Median, double Min, double Max)? s) =>
        s is not { } v ? null : new JsonObject { ["median"] = v.Median, ["min"] = v.Min, ["max"] = v.Max };
}
