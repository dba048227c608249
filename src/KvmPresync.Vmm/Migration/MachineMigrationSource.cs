using KvmPresync.Kvm;
using KvmPresync.Memory;
using KvmPresync.Presync;

namespace KvmPresync.Vmm.Migration;

/// <summary>A running <see cref="Machine"/> as the source of a migration.</summary>
public sealed class MachineMigrationSource : IMigrationSource
{
    private readonly Machine _machine;

    public MachineMigrationSource(Machine machine)
    {
        _machine = machine ?? throw new ArgumentNullException(nameof(machine));
        DirtyLog = new KvmDirtyPageSource(machine.Vm, machine.Slot, machine.VmmWrites, () => (ulong)machine.Telemetry.ProgressTotal);
    }

    public GuestMemory Memory => _machine.Memory;

    public IDirtyPageSource DirtyLog { get; }

    public long ProgressTotal => _machine.Telemetry.ProgressTotal;

    public bool Stopped { get; private set; }

    public void Pause() => _machine.Pause();

    public void Resume() => _machine.Resume();

    public byte[] SaveState() => MachineSnapshotCodec.Encode(_machine.SaveState());

    public void Stop()
    {
        _machine.Stop();
        Stopped = true;
    }
}

/// <summary>A fresh VM waiting for a migrated guest: receives memory, then restores and starts the machine.</summary>
public sealed class MachineMigrationTarget : IMigrationTarget
{
    private readonly KvmSystem _kvm;

    public MachineMigrationTarget(KvmSystem kvm, long memoryBytes)
    {
        _kvm = kvm ?? throw new ArgumentNullException(nameof(kvm));
        Memory = GuestMemory.Create(memoryBytes);
    }

    public GuestMemory Memory { get; }

    /// <summary>The resumed machine (null until <see cref="Resume"/> succeeded); owns <see cref="Memory"/> from then on.</summary>
    public Machine? Machine { get; private set; }

    public void Resume(ReadOnlySpan<byte> deviceState)
    {
        MachineSnapshot snapshot = MachineSnapshotCodec.Decode(deviceState);
        Machine = Machine.Restore(_kvm, snapshot, Memory);
        Machine.Start();
    }

    public void Dispose()
    {
        if (Machine is null) Memory.Dispose();
        else Machine.Dispose();
    }
}
