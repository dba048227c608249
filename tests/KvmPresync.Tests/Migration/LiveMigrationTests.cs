using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Migration;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.Vmm;
using KvmPresync.Trace;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Devices;
using KvmPresync.Vmm.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>A running guest presyncs to a receiver on loopback and is launched: it resumes there, verified, with its heartbeat continuing.</summary>
/// <remarks>Runs alone (no parallel tests): the zero-copy case bounds the whole process's allocations.</remarks>
[Collection(nameof(KvmPresync.Tests.ZeroCopy.ProcessAllocationCollection))]
public sealed class LiveMigrationTests
{
    [Theory]
    [InlineData(Workload.Text, SyncPolicy.PredictSlowStart, false)]
    [InlineData(Workload.Movie, SyncPolicy.PredictSlowStart, true)]
    [InlineData(Workload.Audio, SyncPolicy.None, false)]
    public async Task PresyncedGuestResumesOnTheDestinationWithContinuousHeartbeat(Workload workload, SyncPolicy policy, bool zeroCopy)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var key = MigrationHarness.Key();
        var (endpoint, received) = MigrationHarness.StartReceiver(kvm, key, ct: ct);
        using var source = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(workload));
        // the movie's frames can be timed only where this host writes a frame's pages after a harvest within its 40 ms
        var migrationSource = new MachineMigrationSource(source);
        double frameMs = workload == Workload.Movie ? BurstWrites.FirstAfterHarvest(migrationSource.DirtyLog).Ms : 0;

        using var socket = await MigrationSocket.ConnectAsync(endpoint, ct);
        var sender = new PresyncSender(migrationSource, socket, key, new PresyncOptions
        {
            Engine = new SyncEngineOptions { Policy = policy, LinkBitsPerSecond = 1e9 },
            ZeroCopy = zeroCopy,
        });
        // Launch-to-resume is the critical path: the events of the rounds after launch (a console line, metrics) wait until
        // the source is paused and FinalState is on the wire, so each must find the source guest paused (or stopped).
        var afterLaunchRaisedLive = new List<long>();
        sender.RoundCompleted += r =>
        {
            if (r.Phase != RoundPhase.Sync && !source.IsPaused && !source.Completion.IsCompleted) lock (afterLaunchRaisedLive) afterLaunchRaisedLive.Add(r.Round);
        };
        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var (result, rx, target) = await MigrationHarness.PresyncThenLaunchAsync(sender, received, TimeSpan.FromSeconds(4), ct);
        Assert.Contains(result.Rounds, r => r.Phase == RoundPhase.FinalLive);
        Assert.True(afterLaunchRaisedLive.Count == 0, $"rounds {string.Join(", ", afterLaunchRaisedLive)} raised their event while the source still ran after launch");
        // the burst clock's forecast, where a round has one, comes whole: period, length within it, pages; the movie guest's
        // frames (one every 40 ms) are timed within the 4 s of presync, where this host writes a frame within its period
        Assert.All(result.Rounds.Where(r => r.BurstPeriodMs is not null), r =>
        {
            Assert.InRange(r.BurstLengthMs!.Value, 0.0, r.BurstPeriodMs!.Value);
            Assert.True(r.BurstPages >= 64, $"{r.BurstPages} pages per burst");
            Assert.InRange(r.NextBurstInMs!.Value, 0.0, r.BurstPeriodMs.Value);
        });
        Assert.All(result.Rounds.Where(r => r.BurstPeriodMs is null), r => Assert.True(r.BurstLengthMs is null && r.BurstPages is null && r.NextBurstInMs is null));
        if (workload == Workload.Movie && frameMs >= 40)
        {
            // the frames run together (this host's write faults): the clock must not time them
            Assert.DoesNotContain(result.Rounds, r => r.BurstPeriodMs is not null);
            TestContext.Current.SendDiagnosticMessage($"movie: a frame's writes after a harvest took {frameMs:0.0} ms; no burst clock");
        }
        else if (workload == Workload.Movie)
        {
            RoundRecord timed = result.Rounds.LastOrDefault(r => r.BurstPeriodMs is not null)
                ?? throw new Xunit.Sdk.XunitException("the movie guest's frames were not timed within 4 s of presync");
            Assert.InRange(timed.BurstPeriodMs!.Value, 38.8, 41.2);
            TestContext.Current.SendDiagnosticMessage($"movie bursts: {timed.BurstLengthMs:0.0} ms of {timed.BurstPeriodMs:0.0}, {timed.BurstPages} pages");
        }
        using (target)
        {
            Machine dest = target!.Machine!;
            Heartbeat last = source.Telemetry.LastHeartbeat!.Value;
            long beats = dest.Telemetry.HeartbeatCount;
            MachineTests.WaitFor(dest, () => dest.Telemetry.HeartbeatCount >= beats + 5, "5 heartbeats on the destination");
            Assert.Equal(0, dest.Telemetry.ContinuityErrors); // first beat there: seq = last + 1, prev = last sum
            Assert.Equal(0, dest.Telemetry.SelfCheckErrors);
            Assert.True(dest.Telemetry.LastHeartbeat!.Value.Seq > last.Seq);
            Assert.True(source.Completion.IsCompleted); // the source guest was stopped only after "resumed"
            Assert.Equal(MachineExitKind.Stopped, (await source.Completion).Kind);
        }
        Assert.True(result.SyncBytes > 0 && result.Rounds.Count > 3);
        // "if launched now" is published every sync round, and the last one before launch is set against the actual switchover
        Assert.All(result.Rounds.Where(r => r.Phase == RoundPhase.Sync), r => Assert.NotNull(r.Readiness));
        ReadinessCheck check = Assert.IsType<ReadinessCheck>(result.ReadinessAtLaunch);
        Assert.NotNull(sender.Readiness);
        Assert.True(check.Estimate.LaunchToResumeMs >= check.Estimate.DowntimeMs && check.Estimate.DowntimeMs > 0 && check.Estimate.Bytes >= 0);
        Assert.Equal(result.LaunchToResumeMs, check.LaunchToResumeMs);
        Assert.Equal(result.DowntimeMs, check.DowntimeMs);
        Assert.Equal(check.Estimate.LaunchToResumeMs - result.LaunchToResumeMs, check.LaunchToResumeErrorMs, 9);
        TestContext.Current.SendDiagnosticMessage($"readiness: estimated {check.Estimate}, actual {check.LaunchToResumeMs:0.0} / {check.DowntimeMs:0.0} ms");
        // the launch-to-resume is split without a gap: the sync round ending, the live rounds, the downtime
        LaunchBreakdown launch = Assert.IsType<LaunchBreakdown>(result.Launch);
        Assert.Equal(result.LaunchToResumeMs, launch.SyncEndMs + launch.LiveMs + result.DowntimeMs, 6);
        Assert.True(result.FinalLiveRounds > 0 || launch.LiveBytes == 0); // no live round, no live bytes
        Assert.InRange(launch.LiveBytes, 0, result.LaunchBytes);
        Assert.InRange(launch.HarvestMs, 0, launch.LiveMs);
        if (zeroCopy)
        {
            // MSG_ZEROCOPY: every send completed before the digest was taken; loopback reports them as copied.
            Assert.NotNull(result.ZeroCopy);
            var zc = result.ZeroCopy!.Value;
            Assert.True(zc.Issued > 0);
            Assert.Equal(zc.Issued, zc.Completed);
            TestContext.Current.SendDiagnosticMessage($"zero-copy sends: issued {zc.Issued}, completed {zc.Completed}, copied {zc.Copied}, payload {zc.PayloadBytes} B");
            // Page payloads are never copied into managed memory: the whole process (source, receiver and destination
            // machine) allocated far less than it sent — measured ~1 % in Release. Debug builds are excluded: unoptimized
            // code allocates a field-info stub on every access to a constant span (the hash keys), per page.
            long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
            TestContext.Current.SendDiagnosticMessage($"allocated {allocated} B while sending {result.SyncBytes + result.LaunchBytes} B");
#if !DEBUG
            Assert.True(allocated < (result.SyncBytes + result.LaunchBytes) / 10, $"allocated {allocated} B while sending {result.SyncBytes + result.LaunchBytes} B");
#endif
        }
    }

    [Fact]
    public async Task ALiveRoundThatCannotMeetTheTargetStopsAtItsFirstCheckAndTheGuestResumesVerifiedWithTheRestSentPaused()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var key = MigrationHarness.Key();
        var (endpoint, received) = MigrationHarness.StartReceiver(kvm, key, ct: ct);
        using var source = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Movie));

        using var socket = await MigrationSocket.ConnectAsync(endpoint, ct);
        // a 1 ms launch target that no pause can meet: the round the policy sends with a stop at the target stops before its
        // first batch, and the guest pauses with everything pending
        var sender = new PresyncSender(new MachineMigrationSource(source), socket, key, new PresyncOptions
        {
            Engine = new SyncEngineOptions
            {
                Policy = SyncPolicy.PredictSlowStart, LinkBitsPerSecond = 1e9, LaunchTarget = TimeSpan.FromMilliseconds(1), Convergence = new FirstRoundStopsAtTarget(),
            },
        });
        var (result, rx, target) = await MigrationHarness.PresyncThenLaunchAsync(sender, received, TimeSpan.FromSeconds(2), ct);
        using (target)
        {
            RoundRecord[] launch = result.Rounds.Where(r => r.Phase != RoundPhase.Sync).ToArray();
            TestContext.Current.SendDiagnosticMessage(string.Join("; ", launch.Select(r => $"{r.Phase} pending {r.PendingPages} sent {r.SentPages} {r.Convergence}")));
            Assert.Equal(3, launch.Length);
            (RoundRecord stopped, RoundRecord pause, RoundRecord paused) = (launch[0], launch[1], launch[2]);
            Assert.Equal(new ConvergenceDecision(ConvergenceAction.ContinueLive, ConvergenceReason.FirstLiveRound) { StopAtTarget = true }, stopped.Convergence);
            Assert.Equal(0, stopped.SentPages);
            Assert.Equal(new ConvergenceDecision(ConvergenceAction.Pause, ConvergenceReason.LaunchTargetReached), pause.Convergence);
            Assert.Equal(stopped.PendingPages, pause.PendingPages); // nothing left the pending set
            Assert.Equal(RoundPhase.Paused, paused.Phase);
            Assert.True(paused.SentPages >= pause.PendingPages, $"the paused delta ({paused.SentPages} pages) holds the {pause.PendingPages} the stopped round left");
            Assert.Equal(1, result.FinalLiveRounds);
            Assert.True(rx.Verified && rx.Resumed, rx.Failure);
            await MigrationHarness.AssertRunsOnAsync(source, target!.Machine!);
        }
    }

    /// <summary>The first live round stops at the launch target; later decisions are the default policy's.</summary>
    private sealed class FirstRoundStopsAtTarget : IConvergencePolicy
    {
        public ConvergenceDecision Decide(in ConvergenceInput input) => input.LiveRounds == 0
            ? new ConvergenceDecision(ConvergenceAction.ContinueLive, ConvergenceReason.FirstLiveRound) { StopAtTarget = true }
            : new DowntimeTargetConvergence().Decide(input);
    }

    [Fact]
    public async Task TwoSlotGuestWithAHoleBelowFourGiBIsMigratedVerifiedAndResumed()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var key = MigrationHarness.Key();
        var (endpoint, received) = MigrationHarness.StartReceiver(kvm, key, ct: ct);
        // 64 MiB at GPA 0, 64 MiB at 4 GiB: the fill and the text workload's regions live in the high slot
        using var source = Machine.Boot(kvm, MigrationHarness.Config(Workload.Text) with { LowMemoryTop = 64L << 20 });
        Assert.Equal([(0u, 0UL), (1u, 0x1_0000_0000UL)], source.Memory.Regions.Select(r => (r.SlotId, r.GuestPhysicalAddress)));
        source.Start();
        MachineTests.WaitFor(source, () => source.Telemetry.Ready, "the initial fill");

        using var socket = await MigrationSocket.ConnectAsync(endpoint, ct);
        var sender = new PresyncSender(new MachineMigrationSource(source), socket, key, new PresyncOptions
        {
            Engine = new SyncEngineOptions { Policy = SyncPolicy.PredictSlowStart, LinkBitsPerSecond = 1e9 },
        });
        var (result, rx, target) = await MigrationHarness.PresyncThenLaunchAsync(sender, received, TimeSpan.FromSeconds(3), ct);
        using (target)
        {
            Machine dest = target!.Machine!;
            Assert.Equal(source.Memory.Regions.Select(r => (r.SlotId, r.GuestPhysicalAddress, r.Memory.Size)),
                dest.Memory.Regions.Select(r => (r.SlotId, r.GuestPhysicalAddress, r.Memory.Size)));
            Assert.Equal([0x0UL, 0x1_0000_0000UL], dest.Slots.Select(s => s.GuestPhysicalAddress));
            await MigrationHarness.AssertRunsOnAsync(source, dest, beats: 10);
            TestContext.Current.SendDiagnosticMessage(
                $"two-slot migration: sync {result.SyncBytes} B in {result.Rounds.Count} rounds, launch {result.LaunchBytes} B, downtime {result.DowntimeMs:F1} ms");
        }
    }
}
