using KvmPresync.Memory;
using KvmPresync.Tests.Kvm;
using KvmPresync.Vmm;

namespace KvmPresync.Tests.Vmm;

/// <summary>
/// Pausing a guest whose vCPU sleeps until its pace deadline parks it where it sleeps, without waking it: the pause must
/// still stop the guest clock, leave a state that restores past the guest's last OUT, resume it, and let it be stopped.
/// </summary>
public sealed class MachinePauseTests
{
    private static MachineConfig SlowHeartbeat() => MachineTests.SmallIdle() with { FillBytes = 4L << 20, HeartbeatMs = 200 }; // asleep most of the time

    private static void PauseAsleep(Machine m)
    {
        MachineTests.WaitFor(m, () => m.IsAsleep, "the vCPU to sleep until its pace deadline");
        m.Pause();
        // Pause parks a sleeping vCPU on the caller's thread; only a wake-up in the same microseconds would take the other path
        if (!m.IsParkedAsleep)
        {
            m.Resume();
            MachineTests.WaitFor(m, () => m.IsAsleep, "the vCPU to sleep until its pace deadline");
            m.Pause();
        }
        Assert.True(m.IsParkedAsleep, "the pause parked the vCPU where it slept");
        Assert.True(m.IsPaused);
    }

    [Fact]
    public void APauseWhileTheVcpuSleepsStopsTheClockAndSavesAStatePastTheGuestsLastOut()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var m = Machine.Boot(kvm, SlowHeartbeat());
        m.Start();
        MachineTests.WaitFor(m, () => m.Telemetry.HeartbeatCount >= 2, "2 heartbeats");
        PauseAsleep(m);
        long beats = m.Telemetry.HeartbeatCount, t = m.GuestTimeUs;
        Thread.Sleep(250); // longer than a heartbeat period
        Assert.Equal(beats, m.Telemetry.HeartbeatCount);
        Assert.Equal(t, m.GuestTimeUs);

        MachineSnapshot snap = m.SaveState();
        ulong rip = snap.Vcpu.Regs.Rip;
        Span<byte> code = m.Memory.Regions[0].Memory.Slice((long)rip - 1, 1);
        // the vCPU slept after its pace request (outl %eax,(%dx), 0xEF): saved at the OUT, a restored guest would repeat it
        Assert.True(code[0] == 0xEF, $"the byte before RIP 0x{rip:x} is 0x{code[0]:x2}, not the OUT the guest slept after");

        m.Resume();
        Assert.False(m.IsPaused);
        MachineTests.WaitFor(m, () => m.Telemetry.HeartbeatCount >= beats + 2, "2 more heartbeats");
        Assert.True(m.GuestTimeUs > t);
        Assert.Equal(0, m.Telemetry.ContinuityErrors);
        Assert.Equal(0, m.Telemetry.SelfCheckErrors);
    }

    [Fact]
    public async Task AGuestPausedWhileItsVcpuSleptRestoresIntoAFreshVmAndContinues()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var source = Machine.Boot(kvm, SlowHeartbeat());
        source.Start();
        MachineTests.WaitFor(source, () => source.Telemetry.HeartbeatCount >= 2, "2 heartbeats");
        PauseAsleep(source);
        MachineSnapshot snap = source.SaveState();
        GuestMemoryMap copy = MachineTests.CopyOf(source.Memory);
        source.Stop();
        MachineExit exit = await source.Completion.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken); // a vCPU parked asleep ends on Stop
        Assert.Equal(MachineExitKind.Stopped, exit.Kind);

        using var dest = Machine.Restore(kvm, snap, copy);
        dest.Start();
        MachineTests.WaitFor(dest, () => dest.Telemetry.HeartbeatCount >= snap.Devices.Telemetry.HeartbeatCount + 2, "2 heartbeats after restore");
        Assert.Equal(0, dest.Telemetry.ContinuityErrors);
        Assert.Equal(0, dest.Telemetry.SelfCheckErrors);
    }

    [Fact]
    public void ManyPausesAndResumesAtAnyMomentLoseNoHeartbeatAndNeverHang()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using var m = Machine.Boot(kvm, SlowHeartbeat() with { HeartbeatMs = 2 }); // asleep and busy in turn, every few ms
        m.Start();
        MachineTests.WaitFor(m, () => m.Telemetry.HeartbeatCount >= 5, "5 heartbeats");
        var random = new Random(12);
        int asleep = 0;
        for (int i = 0; i < 300; i++)
        {
            Thread.SpinWait(random.Next(1, 200_000));
            m.Pause(TimeSpan.FromSeconds(5));
            Assert.True(m.IsPaused);
            if (m.IsParkedAsleep) asleep++;
            long beats = m.Telemetry.HeartbeatCount, t = m.GuestTimeUs;
            Thread.SpinWait(random.Next(1, 50_000));
            Assert.Equal(beats, m.Telemetry.HeartbeatCount);
            Assert.Equal(t, m.GuestTimeUs);
            m.Resume();
        }
        long before = m.Telemetry.HeartbeatCount;
        MachineTests.WaitFor(m, () => m.Telemetry.HeartbeatCount >= before + 5, "5 heartbeats after the last resume");
        Assert.Equal(0, m.Telemetry.ContinuityErrors);
        Assert.Equal(0, m.Telemetry.SelfCheckErrors);
        TestContext.Current.SendDiagnosticMessage($"{asleep} of 300 pauses parked the vCPU asleep");
        Assert.InRange(asleep, 1, 299); // both paths ran
    }
}
