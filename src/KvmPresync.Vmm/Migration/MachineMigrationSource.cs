using KvmPresync.Kvm;
using KvmPresync.Memory;
using KvmPresync.Core;
using KvmPresync.Vmm.Devices;

namespace KvmPresync.Vmm.Migration;

/// <summary>A running <see cref="Machine"/> as the source of a migration.</summary>
public sealed class MachineMigrationSource : IMigrationSource, IGuestRunStatsSource
{
    private readonly Machine _machine;

    public MachineMigrationSource(Machine machine)
    {
        _machine = machine ?? throw new ArgumentNullException(nameof(machine));
        Memory = machine.Memory;
        DirtyLog = new KvmDirtyPageSource(machine.Vm, machine.Slots, machine.VmmWrites, () => (ulong)machine.Telemetry.ProgressTotal);
        MachineSnapshotCodec.Warm();
        WarmStateSave(machine.Vm);
    }

    public GuestMemoryMap Memory { get; }

    public IDirtyPageSource DirtyLog { get; }

    /// <summary>
    /// The guest's work units (<see cref="Machine.WorkUnits"/>): for a replay guest, the trace milliseconds it has replayed
    /// (<see cref="Machine.ReplayedTraceMs"/>) — a trace's own work counter (none at all for a captured program) follows the
    /// trace's bursts, while the replay's pace shows only whether the guest keeps up; for a paced guest that publishes its
    /// schedule (text), the schedule milliseconds it has caught up to (<see cref="Machine.ScheduleMs"/>) — its keystrokes
    /// come in bursts, so their count over a window follows the schedule, not the guest; otherwise what the guest reports
    /// through its progress port.
    /// </summary>
    public long ProgressTotal => _machine.WorkUnits;

    public GuestRunStats? RunStats => _machine.RunStats;

    public bool Stopped { get; private set; }

    public void Pause() => _machine.Pause();

    public void Resume() => _machine.Resume();

    public byte[] SaveState() => MachineSnapshotCodec.Encode(_machine.SaveState());

    /// <summary>
    /// Runs the state save's code once on a scratch VM made like the guest's (same in-kernel devices), before any downtime:
    /// the first save in a process binds every KVM_GET_* entry point and compiles the save path — 2–3 ms on kvm_pvm, which
    /// sat in the downtime as the "state" step (a warm save takes 0.1–0.3 ms). The guest's own vCPU is not touched.
    /// </summary>
    private static void WarmStateSave(Vm like)
    {
        using Vm scratch = like.System.CreateVm(like.Options);
        using Vcpu vcpu = scratch.CreateVcpu(0);
        _ = vcpu.SaveState();
        _ = scratch.SaveState();
        JitWarmup.Prepare(typeof(Machine), typeof(MachineMigrationSource));
    }

    public void Stop()
    {
        _machine.Stop();
        Stopped = true;
    }
}

/// <summary>
/// A fresh VM waiting for a migrated guest: created (VM, slots, vCPU) as soon as the layout is known, so that
/// at the switchover only the state restore and the start remain.
/// </summary>
public sealed class MachineMigrationTarget : IMigrationTarget
{
    private readonly MachineShell _shell;
    private readonly StandbyThread _vcpuThread; // started now; at the switchover it only receives the vCPU loop

    /// <param name="kvm">Where to create the VM.</param>
    /// <param name="slots">The announced memory slots, in the announced order (which fixes the page numbering).</param>
    public MachineMigrationTarget(KvmSystem kvm, IEnumerable<RamSlot> slots)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        Memory = RamLayout.Allocate(slots);
        try
        {
            _shell = MachineShell.Create(kvm, Memory);
            _shell.Warm();
            _vcpuThread = new StandbyThread("vcpu0");
            JitWarmup.Prepare(typeof(Machine), typeof(MachineSnapshotCodec), typeof(MachineShell), typeof(MachineMigrationTarget),
                typeof(GuestClock), typeof(GuestTelemetry), typeof(StandbyThread)); // the resume path, compiled before the switchover
        }
        catch
        {
            Memory.Dispose();
            throw;
        }
    }

    public GuestMemoryMap Memory { get; }

    /// <summary>The resumed machine (null until <see cref="Resume"/> succeeded); owns the VM and <see cref="Memory"/> from then on.</summary>
    public Machine? Machine { get; private set; }

    public void Resume(ReadOnlySpan<byte> deviceState)
    {
        if (Machine is not null) throw new InvalidOperationException("the guest was already resumed");
        MachineSnapshot snapshot = MachineSnapshotCodec.Decode(deviceState);
        Machine = Machine.Restore(_shell, snapshot);
        Machine.Start(_vcpuThread);
    }

    public void Dispose()
    {
        _vcpuThread.Dispose();
        if (Machine is not null)
        {
            Machine.Dispose();
            return;
        }
        _shell.Dispose();
        Memory.Dispose();
    }
}
