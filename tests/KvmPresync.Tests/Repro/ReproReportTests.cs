using System.Text.Json.Nodes;
using KvmPresync.Cli.Repro;
using KvmPresync.Cli.Repro.Libvirt;
using KvmPresync.Libvirt.Guest;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;

namespace KvmPresync.Tests.Repro;

/// <summary>The repro table and JSON: medians, the steady-state reduction, the slowdown baseline and the honesty check.</summary>
public sealed class ReproReportTests
{
    private static readonly ReproCommand.Settings Settings = new(["text"], 256L << 20, "loopback", 1e9, 3, 60, null, null);

    private static ReproModeRun Run(string mode, int run, double launchMs, long launchBytes = 0, long syncBytes = 0, long? initial = null,
        double? early = null, bool ok = true) => new()
    {
        Workload = "text",
        Mode = mode,
        Run = run,
        Result = new MigrationResult
        {
            Succeeded = ok,
            Verified = ok,
            Failure = ok ? null : "receiver died",
            LaunchToResumeMs = launchMs,
            DowntimeMs = launchMs / 2,
            SyncBytes = syncBytes,
            InitialCopyBytes = initial,
            LaunchBytes = launchBytes,
            ProgressRateFirstSeconds = early,
        },
    };

    private static List<ReproModeRun> Honest() =>
    [
        Run("precopy", 1, 1900, launchBytes: 200_000_000, early: 4),
        Run("precopy", 2, 1800, launchBytes: 200_000_000, early: 4),
        Run("precopy", 3, 2000, launchBytes: 200_000_000, early: 4),
        Run("slowstart", 1, 30, syncBytes: 300_000_000, initial: 200_000_000, early: 3),
        Run("slowstart", 2, 20, syncBytes: 280_000_000, initial: 200_000_000, early: 4),
        Run("slowstart", 3, 40, syncBytes: 320_000_000, initial: 200_000_000, early: 4),
        Run("predict+slowstart", 1, 25, syncBytes: 210_000_000, initial: 200_000_000, early: 4),
        Run("predict+slowstart", 2, 35, syncBytes: 220_000_000, initial: 200_000_000, early: 4),
        Run("predict+slowstart", 3, 45, syncBytes: 230_000_000, initial: 200_000_000, early: 4),
    ];

    [Fact]
    public void JsonHasTheDocumentedSchemaWithMediansAndTheSteadyStateReduction()
    {
        ReproReport report = ReproReport.Build(Settings, Honest());
        Assert.Empty(report.HonestyFailures);
        JsonObject json = report.ToJson();
        Assert.Equal("loopback", (string)json["link"]!["kind"]!);
        Assert.Equal(1e9, (double)json["link"]!["rateBitsPerSec"]!);
        Assert.Equal(256L << 20, (long)json["memoryBytes"]!);
        JsonNode text = json["workloads"]!["text"]!;
        Assert.Equal(1900, (double)text["precopy"]!["launchToResumeMs"]!["median"]!);
        Assert.Equal(1800, (double)text["precopy"]!["launchToResumeMs"]!["min"]!);
        Assert.Equal(2000, (double)text["precopy"]!["launchToResumeMs"]!["max"]!);
        Assert.Equal(35, (double)text["predict+slowstart"]!["launchToResumeMs"]!["median"]!);
        Assert.True((bool)text["predict+slowstart"]!["verified"]!);
        foreach (string field in new[] { "downtimeMs", "syncBytes", "launchBytes", "slowdownPercent" })
            Assert.NotNull(text["slowstart"]![field]);
        // steady-state sync bytes: slowstart median 100 MB, predict+slowstart median 20 MB → 80 % less
        Assert.Equal(80, (double)text["reductionPercent"]!, 6);
        // slowdown: run 1 of presync did 3 units/s where precopy did 4 → 25 %; the median over the 3 runs is 0
        Assert.Equal(25, (double)text["slowstart"]!["slowdownPercent"]!["max"]!, 6);
        Assert.Equal(0, (double)text["slowstart"]!["slowdownPercent"]!["median"]!, 6);
    }

    [Fact]
    public void EachRunCarriesWhereItsSwitchoverTimeWent()
    {
        List<ReproModeRun> runs = Honest();
        runs[6] = runs[6] with
        {
            Result = runs[6].Result with
            {
                FinalLiveRounds = 2,
                Launch = new LaunchBreakdown(0.5, 6.0, 40_000, 0.3),
                Downtime = new DowntimeBreakdown(0.4, 0.2, 0.3, 3.1),
            },
        };
        JsonNode run = ReproReport.Build(Settings, runs).ToJson()["workloads"]!["text"]!["predict+slowstart"]!["runs"]![0]!;
        Assert.Equal(6.0, (double)run["launch"]!["liveMs"]!);
        Assert.Equal(2, (int)run["launch"]!["liveRounds"]!);
        Assert.Equal(40_000, (long)run["launch"]!["liveBytes"]!);
        Assert.Equal(3.1, (double)run["downtime"]!["destinationMs"]!);
        Assert.Equal(0.4, (double)run["downtime"]!["finalDeltaMs"]!);
        Assert.Null(ReproReport.Build(Settings, Honest()).ToJson()["workloads"]!["text"]!["precopy"]!["runs"]![0]!["downtime"]); // not measured: null
        Assert.Equal(["before the pause: sync round ended 0.5 ms after the launch request, then 2 live rounds in 6.0 ms (39.1 KiB, harvests 0.3 ms)",
                      "downtime: final delta 0.4 ms, digest 0.2 ms, state 0.3 ms, destination verify+restore+resume 3.1 ms"],
            KvmPresync.Cli.Commands.PresyncRun.BreakdownLines(runs[6].Result));
    }

    [Fact]
    public void PrecopyFasterThanItsBytesAllowIsAnHonestyFailure()
    {
        var runs = Honest();
        runs[0] = Run("precopy", 1, 900, launchBytes: 200_000_000, early: 4); // 200 MB at 1 Gbit/s needs 1600 ms
        ReproReport report = ReproReport.Build(Settings, runs);
        string failure = Assert.Single(report.HonestyFailures);
        Assert.Contains("text precopy run 1", failure);
        Assert.Contains("link model is wrong", failure);
    }

    [Fact]
    public void FailedRunsAreShownAndNeverCountedAsVerified()
    {
        var runs = Honest();
        runs[8] = Run("predict+slowstart", 3, 0, ok: false);
        ReproReport report = ReproReport.Build(Settings, runs);
        JsonNode text = report.ToJson()["workloads"]!["text"]!;
        Assert.False((bool)text["predict+slowstart"]!["verified"]!);
        Assert.Equal(30, (double)text["predict+slowstart"]!["launchToResumeMs"]!["median"]!); // median of the two that succeeded
        var table = new StringWriter();
        report.WriteTable(table);
        Assert.Contains("2/3", table.ToString());
        Assert.Contains("paper 50.5 %", table.ToString());
        Assert.Contains("bound", table.ToString());
    }

    [Fact]
    public void LibvirtTargetReportsItsOwnModesWithVirshPrecopyAsTheBaselineAndTheHeartbeatHandoverPerRun()
    {
        var settings = new ReproCommand.Settings(["text"], 256L << 20, "loopback", 1e9, 2, 15, null, null, ReproCommand.LibvirtTarget);
        Assert.Equal(["presync+predict", "virsh-precopy", "virsh-postcopy"], settings.ModeNames);
        Assert.Equal("virsh-precopy", settings.BaselineMode);
        ReproModeRun Libvirt(string mode, int run, double launchMs, double downtime, double stall, bool ok = true) => Run(mode, run, launchMs, launchBytes: 110_000_000) with
        {
            Result = Run(mode, run, launchMs, launchBytes: 110_000_000, ok: ok).Result with { DowntimeMs = downtime },
            Libvirt = new LibvirtRunDetail
            {
                Domain = "kp-text-1",
                ReportedDowntimeMs = downtime,
                Heartbeats = new HeartbeatHandover { Verified = ok, Failure = ok ? null : "heartbeat chain broken: seq 9 after 7 (1 missing)", HostGapMs = 100 + stall, GuestGapMs = 100 },
                JobStats = new Dictionary<string, object> { ["downtime"] = (ulong)downtime, ["memory_postcopy_requests"] = 19UL },
            },
        };
        var runs = new List<ReproModeRun>
        {
            Libvirt("virsh-precopy", 1, 1900, 50, 60), Libvirt("virsh-precopy", 2, 2100, 54, 70),
            Libvirt("virsh-postcopy", 1, 1000, 6, 300), Libvirt("virsh-postcopy", 2, 0, 0, 0, ok: false),
        };
        ReproReport report = ReproReport.Build(settings, runs);
        Assert.Empty(report.HonestyFailures); // 110 MB at 1 Gbit/s needs 880 ms: both pre-copy runs took longer
        JsonObject json = report.ToJson();
        Assert.Equal("libvirt", (string)json["target"]!);
        JsonNode text = json["workloads"]!["text"]!;
        Assert.Equal(2000, (double)text["virsh-precopy"]!["launchToResumeMs"]!["median"]!);
        Assert.Equal(65, (double)text["virsh-precopy"]!["consoleStallMs"]!["median"]!, 6);
        Assert.False((bool)text["virsh-postcopy"]!["verified"]!);
        JsonNode failed = text["virsh-postcopy"]!["runs"]![1]!;
        Assert.False((bool)failed["succeeded"]!);
        Assert.False((bool)failed["libvirt"]!["heartbeats"]!["verified"]!);
        Assert.Equal(19UL, (ulong)text["virsh-postcopy"]!["runs"]![0]!["libvirt"]!["jobStats"]!["memory_postcopy_requests"]!);
        Assert.Null(text["predict+slowstart"]);
        var table = new StringWriter();
        report.WriteTable(table);
        string t = table.ToString();
        Assert.Contains("console stall", t);
        Assert.Contains("1/2", t);
        Assert.Contains("run 2 failed: receiver died", t); // the failed run is shown with its reason
        Assert.Contains("launch speed-up of presync+predict vs virsh-precopy: n/a", t);
    }
}
