using KvmPresync.Kvm;
using KvmPresync.Vmm.Devices;

namespace KvmPresync.Vmm;

/// <summary>The VMM's own device state: guest clock, pending pace deadline, telemetry (heartbeat continuity).</summary>
public sealed record DeviceState(long ClockUs, long PaceDeadlineUs, long LatchedClockUs, TelemetryState Telemetry);

/// <summary>Everything but memory needed to continue a machine elsewhere.</summary>
public sealed record MachineSnapshot(MachineConfig Config, VcpuState Vcpu, VmState Vm, DeviceState Devices);
