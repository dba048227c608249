using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.Vmm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Migration;
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
        using var machine = Machine.Boot(kvm, MigrationHarness.Config(Workload.Audio)); // 50 periods/s, paced
        machine.Start();
        MachineTests.WaitFor(machine, () => machine.Telemetry.Ready, "the initial fill");
        var source = new MachineMigrationSource(machine);

        long before = machine.Telemetry.ProgressTotal;
        GuestWindow baseline = await GuestWindow.MeasureAsync(source, TimeSpan.FromSeconds(1.5), ct);
        long after = machine.Telemetry.ProgressTotal;
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
        long atConnect = machine.Telemetry.ProgressTotal;
        var (result, _, target) = await MigrationHarness.PresyncThenLaunchAsync(sender, received, TimeSpan.FromSeconds(3), ct);
        target.Dispose();

        Assert.NotNull(result.GuestSlowdown);
        GuestSlowdown s = result.GuestSlowdown!;
        Assert.Same(baseline, s.Baseline);
        Assert.Equal(result.PresyncWindow, s.Presync);
        GuestWindow presync = s.Presync;
        Assert.InRange(presync.Seconds, 1, 10); // the sync period: after the handshake, to launch (within the 3 s)
        Assert.InRange(presync.Units, 1, machine.Telemetry.ProgressTotal - atConnect);
        Assert.Equal(result.ProgressRateDuringSync, presync.Rate, 3);
        Assert.NotNull(presync.Run);
        Assert.Equal((1 - presync.Rate / baseline.Rate) * 100, s.Percent!.Value, 9);
        Assert.Equal(presync.Rate / baseline.Rate * (1.0 / baseline.Units + 1.0 / presync.Units) * 100, s.CountingUncertaintyPercent!.Value, 9);
        TestContext.Current.SendDiagnosticMessage($"slowdown {s.Percent:0.00} % ± {s.CountingUncertaintyPercent:0.00}: {presync.Rate:0.00}/s vs {baseline.Rate:0.00}/s; " +
                                                  $"vCPU on-CPU µs/unit {baseline.OnCpuUsPerUnit:0} → {presync.OnCpuUsPerUnit:0}, run-queue wait ms/s {baseline.RunQueueWaitMsPerSecond:0.0} → {presync.RunQueueWaitMsPerSecond:0.0}");
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
