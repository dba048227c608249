using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.Vmm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Migration;
using KvmPresync.Vmm.Replay;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// The guest-slowdown figure a presync reports: the guest's own work counter over the sync period against a baseline
/// window measured on the same guest just before, nothing sent. Asserts how the figure is made from measured rates, not a
/// bound (which depends on the machine).
/// </summary>
public sealed class GuestSlowdownTests
{
    [Fact]
    public async Task SlowdownIsThePresyncRateAgainstTheBaselineRateBothMeasuredOnTheRunningGuest()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var key = MigrationHarness.Key();
        var (endpoint, received) = MigrationHarness.StartReceiver(kvm, key, ct: ct);
        using var machine = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Audio)); // 50 periods/s, paced
        var source = new MachineMigrationSource(machine);

        long before = machine.WorkUnits;
        GuestWindow baseline = await GuestWindow.MeasureAsync(source, TimeSpan.FromSeconds(1.5), ct);
        long after = machine.WorkUnits;
        Assert.InRange(baseline.Seconds, 1.5, 3);
        Assert.InRange(baseline.Units, 1, after - before); // the guest's own counter, read at both ends of the window
        Assert.Equal(baseline.Units / baseline.Seconds, baseline.Rate, 9);
        // the vCPU thread's scheduler figures: it ran, and a paced guest mostly sleeps until its next period
        GuestRunStats run = Assert.NotNull(baseline.Run);
        Assert.True(run.OnCpuNs > 0 && run.PaceIdleNs > 0 && run.RunQueueWaitNs >= 0, $"{run}");
        Assert.InRange(baseline.BusyPercent!.Value, 0, 100);

        using var socket = await MigrationSocket.ConnectAsync(endpoint, ct);
        var sender = new PresyncSender(source, socket, key, new PresyncOptions
        {
            Engine = new SyncEngineOptions { Policy = SyncPolicy.PredictSlowStart, LinkBitsPerSecond = 1e9 },
            Baseline = baseline,
        });
        long atConnect = machine.WorkUnits;
        var (result, _, target) = await MigrationHarness.PresyncThenLaunchAsync(sender, received, TimeSpan.FromSeconds(3), ct);
        target.Dispose();

        Assert.NotNull(result.GuestSlowdown);
        GuestSlowdown s = result.GuestSlowdown!;
        Assert.Same(baseline, s.Baseline);
        Assert.Equal(result.PresyncWindow, s.Presync);
        GuestWindow presync = s.Presync;
        Assert.InRange(presync.Seconds, 1, 10); // the sync period: after the handshake, to launch (within the 3 s)
        Assert.InRange(presync.Units, 1, machine.WorkUnits - atConnect);
        Assert.Equal(result.ProgressRateDuringSync, presync.Rate, 3);
        Assert.NotNull(presync.Run);
        Assert.Equal((1 - presync.Rate / baseline.Rate) * 100, s.Percent!.Value, 9);
        Assert.Equal(presync.Rate / baseline.Rate * (1.0 / baseline.Units + 1.0 / presync.Units) * 100, s.CountingUncertaintyPercent!.Value, 9);
        TestContext.Current.SendDiagnosticMessage($"slowdown {s.Percent:0.00} % ± {s.CountingUncertaintyPercent:0.00}: {presync.Rate:0.00}/s vs {baseline.Rate:0.00}/s; " +
                                                  $"vCPU on-CPU µs/unit {baseline.OnCpuUsPerUnit:0} → {presync.OnCpuUsPerUnit:0}, run-queue wait ms/s {baseline.RunQueueWaitMsPerSecond:0.0} → {presync.RunQueueWaitMsPerSecond:0.0}");
    }

    /// <summary>Every <c>step</c>, the same <c>pages</c> pages from page 0: a trace with a steady load.</summary>
    private sealed class SteadyFeed(long pageCount, int pages, TimeSpan step) : IReplayFeed
    {
        private long _interval;

        public long PageCount => pageCount;

        public ReplayBatch? Next(Span<ReplayRun> runs)
        {
            runs[0] = new ReplayRun(0, (uint)pages);
            long i = _interval++;
            return new ReplayBatch(i, step * i, 1, pages, 0);
        }
    }

    [Theory]
    [InlineData(50, 20, true)]       // 2,500 pages/s: keeps up
    [InlineData(20_000, 2, false)]   // 10,000,000 pages/s (40 GB/s): far more than a vCPU writes
    public async Task ReplayGuestsProgressIsTheTracesPaceThousandMillisecondsPerSecondWhileItKeepsUp(int pagesPerStep, int stepMs, bool keepsUp)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        var config = new MachineConfig
        {
            Workload = Workload.Replay, MemorySize = 128L << 20, HeartbeatMs = 50, GuestImage = KvmRequirement.GuestImageOrFail(),
            ReplayFeed = new SteadyFeed(20_000, pagesPerStep, TimeSpan.FromMilliseconds(stepMs)),
        };
        using var machine = Machine.Boot(kvm, config);
        machine.Start();
        MachineTests.WaitFor(machine, () => machine.Telemetry.Ready && machine.ReplayedTraceMs is not null, "the replay's first batch");
        var source = new MachineMigrationSource(machine);
        GuestWindow w = await GuestWindow.MeasureAsync(source, TimeSpan.FromSeconds(1.5), ct);
        TestContext.Current.SendDiagnosticMessage($"{pagesPerStep} pages every {stepMs} ms: {w.Rate:0.0} trace ms/s, {machine.ReplayStats.LateIntervals} late intervals");
        if (keepsUp)
            Assert.InRange(w.Rate, 900, 1010); // one trace ms per ms, less a batch's writing time at the window's ends
        else
        {
            Assert.InRange(w.Rate, 0, 500); // falls behind the trace: the pace shows it
            Assert.True(machine.ReplayStats.LateIntervals > 0);
        }
    }

    /// <summary>Text with short bursts (0.3–0.6 s) and pauses (0.3–1 s): a 1.5 s window holds a pause or two.</summary>
    private static ulong[] ShortBurstText()
    {
        var p = new ulong[GuestAbi.BootInfo.ParamCount];
        (p[2], p[3], p[4], p[5]) = (300, 600, 300, 1000);
        return p;
    }

    public static TheoryData<Workload> PacedWorkloads => [Workload.Text, Workload.Audio, Workload.Movie];

    [Theory]
    [MemberData(nameof(PacedWorkloads))]
    public async Task PacedGuestsProgressIsTheirScheduleCaughtUpThousandMillisecondsPerSecondWhileTheyKeepUp(Workload workload)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        MachineConfig config = MigrationHarness.Config(workload) with { Params = workload == Workload.Text ? ShortBurstText() : new ulong[GuestAbi.BootInfo.ParamCount] };
        using var machine = MigrationHarness.BootFilled(kvm, config);
        var source = new MachineMigrationSource(machine);
        // The claim is about a window in which the guest keeps up. A movie frame is dropped when the vCPU thread is
        // off the CPU for 40 ms, which a test run sharing 2 cores can cause (fresh-clone CI once lost one frame). A
        // window that lost schedule time still has its rate checked, and is measured again, at most twice.
        const int Windows = 3;
        for (int attempt = 1; ; attempt++)
        {
            long keysBefore = machine.Telemetry.ProgressTotal;
            long lostBefore = machine.ScheduleLostMs ?? 0;
            GuestWindow w = await GuestWindow.MeasureAsync(source, TimeSpan.FromSeconds(1.5), ct);
            long reported = machine.Telemetry.ProgressTotal - keysBefore;
            long lost = (machine.ScheduleLostMs ?? 0) - lostBefore;
            TestContext.Current.SendDiagnosticMessage($"{workload}, window {attempt}: {w.Rate:0.0} schedule ms/s; {reported} units reported by the guest; {lost} ms of schedule dropped; vCPU thread {w.Run}");
            Assert.NotNull(machine.ScheduleMs);
            Assert.True(reported > 0, "the guest worked in the window");
            // one schedule ms per ms, through the text's pauses too, less an item's writing time at the window's ends
            Assert.InRange(w.Rate, 900, 1010);
            if (lost == 0) break;
            Assert.True(attempt < Windows, $"the guest dropped schedule time in each of {Windows} windows, the last {lost} ms: it does not keep up");
        }
    }

    [Fact]
    public async Task AStoppedGuestShowsItsLostTimeAsSlowdown()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var machine = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Text) with { Params = ShortBurstText() });
        var source = new MachineMigrationSource(machine);
        GuestWindow baseline = await GuestWindow.MeasureAsync(source, TimeSpan.FromSeconds(1), ct);
        var stopFor = TimeSpan.FromSeconds(1);
        Task<GuestWindow> window = GuestWindow.MeasureAsync(source, TimeSpan.FromSeconds(2), ct);
        machine.Pause();
        await Task.Delay(stopFor, ct);
        machine.Resume();
        GuestWindow stopped = await window;
        GuestSlowdown s = new(baseline, stopped);
        TestContext.Current.SendDiagnosticMessage($"stopped {stopFor.TotalSeconds} s of {stopped.Seconds:0.00} s: slowdown {s.Percent:0.0} % ({stopped.Rate:0} vs {baseline.Rate:0} ms/s)");
        // the guest did no work while stopped: its window lost that share of its schedule, give or take an item's writing time
        double stoppedShare = stopFor.TotalSeconds / stopped.Seconds * 100;
        Assert.InRange(s.Percent!.Value, stoppedShare - 10, stoppedShare + 10);
    }

    [Fact]
    public async Task ATextGuestThatCannotKeepUpFallsBehindItsScheduleAndDropsKeys()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        var p = new ulong[GuestAbi.BootInfo.ParamCount];
        p[1] = 1;                 // a key every 0.5–1.5 ms, with pauses of 1 ms only,
        (p[4], p[5]) = (1, 1);
        p[6] = 970;               // nearly every one a jump, half of them far: the whole screen redrawn,
        (p[9], p[10]) = (8192, 4096); // a 128 MiB screen (32,768 pages): a third of the keys redraw it, many times one key's time
        using var machine = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Text, 256L << 20) with { Params = p, FillBytes = 16L << 20 });
        var source = new MachineMigrationSource(machine);
        GuestWindow late = await GuestWindow.MeasureAsync(source, TimeSpan.FromSeconds(3), ct);
        Assert.InRange(late.Rate, 0, 500); // late for its keys: the schedule time caught up lags the clock

        // Its steps grow until one starts more than 1 s after keys were due: those are dropped, and the guest catches up
        // with the clock by skipping them. A window over that catch-up must not count the skipped time.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        GuestSample start = GuestSample.Of(source, clock.Elapsed);
        long lostBefore = machine.ScheduleLostMs ?? 0;
        MachineTests.WaitFor(machine, () => machine.ScheduleLostMs > lostBefore, "the guest to drop keys", seconds: 60);
        GuestWindow dropping = GuestWindow.Between(start, GuestSample.Of(source, clock.Elapsed));
        TestContext.Current.SendDiagnosticMessage($"{late.Rate:0} schedule ms/s while late; {dropping.Rate:0} over {dropping.Seconds:0.0} s " +
                                                  $"until it dropped {machine.ScheduleLostMs - lostBefore} ms of keys; {machine.Telemetry.ProgressTotal} keys typed");
        Assert.InRange(dropping.Rate, 0, 500);
    }

    [Fact]
    public void WithoutWorkInTheBaselineThereIsNoFigure()
    {
        var s = new GuestSlowdown(new GuestWindow(5, 0, null), new GuestWindow(10, 40, null));
        Assert.Null(s.Percent);
        Assert.Null(s.CountingUncertaintyPercent);
        Assert.Null(GuestSlowdown.Of(null, new GuestWindow(10, 40, null)));
        Assert.Equal(-100, new GuestSlowdown(new GuestWindow(5, 20, null), new GuestWindow(10, 80, null)).Percent!.Value, 9); // did more: negative
    }
}
