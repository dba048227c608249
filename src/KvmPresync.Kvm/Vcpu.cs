using KvmPresync.Memory;
using KvmPresync.Kvm.Interop;

namespace KvmPresync.Kvm;

/// <summary>What ended one <see cref="Vcpu.Run"/>.</summary>
public readonly record struct VcpuExit(KvmExitReason Reason, ushort Port, bool IsOut, byte Size, uint Count, ulong HardwareReason)
{
    /// <summary>True when the vCPU returned because it was kicked (KVM_RUN gave EINTR).</summary>
    public bool Interrupted => Reason == KvmExitReason.Intr;

    public override string ToString() => Reason switch
    {
        KvmExitReason.Io => $"{(IsOut ? "OUT" : "IN")} port 0x{Port:x} size {Size} count {Count}",
        KvmExitReason.FailEntry => $"FAIL_ENTRY hardware reason 0x{HardwareReason:x}",
        KvmExitReason.InternalError => $"INTERNAL_ERROR suberror {HardwareReason}",
        _ => $"{Reason} ({(uint)Reason})",
    };
}

/// <summary>
/// A vCPU: its fd, its mmap'ed kvm_run, and the thread that runs it. Only <see cref="Vm.CreateVcpu"/>
/// creates one. <see cref="Run"/> is called from one thread at a time; <see cref="Kick"/> from any.
/// </summary>
public sealed unsafe partial class Vcpu : IDisposable
{
    private readonly VcpuHandle _handle;
    private readonly MappingHandle _run;
    private ulong _runThread;

    private Vcpu(Vm vm, uint id, VcpuHandle handle, MappingHandle run)
    {
        Vm = vm;
        Id = id;
        _handle = handle;
        _run = run;
    }

    public Vm Vm { get; }

    public uint Id { get; }

    private byte* RunBase => (byte*)_run.Address;

    internal static Vcpu Create(Vm vm, uint id)
    {
        KvmException.Check(KvmNative.KickInit(), "sigaction(SIGUSR2)");
        var handle = new VcpuHandle(KvmException.Check(KvmNative.VcpuCreate(vm.Handle.Fd, id), $"KVM_CREATE_VCPU({id})"));
        nint run = KvmNative.VcpuMapRun(handle.Fd, (ulong)vm.System.VcpuMmapSize, out int err);
        if (run == 0)
        {
            handle.Dispose();
            throw new KvmException("mmap(kvm_run)", -err);
        }
        var vcpu = new Vcpu(vm, id, handle, new MappingHandle(run, (ulong)vm.System.VcpuMmapSize));
        try
        {
            KvmCpuidEntry2[] cpuid = vm.System.SupportedCpuid();
            fixed (KvmCpuidEntry2* p = cpuid)
                KvmException.Check(KvmNative.VcpuSetCpuid2(handle.Fd, p, (uint)cpuid.Length), "KVM_SET_CPUID2");
            if (vm.System.ReadableMsrs is null) vcpu.SaveMsrs(handle.Fd); // learn the readable MSRs now, not in a downtime
            return vcpu;
        }
        catch
        {
            vcpu.Dispose();
            throw;
        }
    }

    /// <summary>Enters the guest until the next exit. Returns <see cref="VcpuExit.Interrupted"/> when kicked.</summary>
    public VcpuExit Run()
    {
        if (_runThread == 0) _runThread = KvmNative.ThreadSelf();
        int ret = KvmNative.VcpuRun(_handle.Fd);
        if (ret == -KvmConstants.Eintr)
        {
            // Safe: immediate_exit is a byte inside the live kvm_run mapping.
            Volatile.Write(ref RunBase[KvmRunOffsets.ImmediateExit], 0);
            return new VcpuExit(KvmExitReason.Intr, 0, false, 0, 0, 0);
        }
        KvmException.Check(ret, $"KVM_RUN(vcpu {Id})");
        // Safe: all offsets are inside kvm_run's head, proved by the layout test.
        byte* run = RunBase;
        var reason = (KvmExitReason)(*(uint*)(run + KvmRunOffsets.ExitReason));
        return reason switch
        {
            KvmExitReason.Io => new VcpuExit(reason, *(ushort*)(run + KvmRunOffsets.IoPort),
                run[KvmRunOffsets.IoDirection] == KvmConstants.IoDirectionOut, run[KvmRunOffsets.IoSize],
                *(uint*)(run + KvmRunOffsets.IoCount), 0),
            KvmExitReason.FailEntry => new VcpuExit(reason, 0, false, 0, 0, *(ulong*)(run + KvmRunOffsets.FailEntryReason)),
            KvmExitReason.InternalError => new VcpuExit(reason, 0, false, 0, 0, *(uint*)(run + KvmRunOffsets.InternalSuberror)),
            _ => new VcpuExit(reason, 0, false, 0, 0, 0),
        };
    }

    /// <summary>The data of the current I/O exit (size × count bytes inside kvm_run): read it for OUT, fill it for IN.</summary>
    public Span<byte> IoData(in VcpuExit exit)
    {
        if (exit.Reason != KvmExitReason.Io)
            throw new InvalidOperationException($"vCPU {Id}: IoData needs an I/O exit, got {exit}");
        ulong offset = *(ulong*)(RunBase + KvmRunOffsets.IoDataOffset);
        long length = (long)exit.Size * exit.Count;
        if (offset + (ulong)length > _run.Length)
            throw new KvmException("KVM_RUN", $"I/O data [{offset}, +{length}) lies outside kvm_run ({_run.Length} bytes)");
        // Safe: the range was checked against the kvm_run mapping above.
        return new Span<byte>(RunBase + offset, (int)length);
    }

    /// <summary>
    /// Makes a concurrent or the next <see cref="Run"/> return <see cref="VcpuExit.Interrupted"/>:
    /// sets kvm_run.immediate_exit (covers a kick before KVM_RUN is entered) and signals the run thread.
    /// </summary>
    public void Kick()
    {
        // Safe: immediate_exit is a byte inside the live kvm_run mapping.
        Volatile.Write(ref RunBase[KvmRunOffsets.ImmediateExit], 1);
        ulong thread = Volatile.Read(ref _runThread);
        if (thread != 0) KvmNative.ThreadKick(thread);
    }

    /// <summary>
    /// On the vCPU's thread, outside KVM_RUN: completes the pending I/O or MMIO exit (the guest's instruction ends, RIP moves
    /// on) and returns <see cref="VcpuExit.Interrupted"/> without entering the guest — KVM_RUN with immediate_exit set.
    /// </summary>
    public VcpuExit RunImmediateExit()
    {
        // Safe: immediate_exit is a byte inside the live kvm_run mapping; Run clears it when KVM_RUN returns EINTR.
        Volatile.Write(ref RunBase[KvmRunOffsets.ImmediateExit], 1);
        return Run();
    }

    public KvmRegs GetRegs()
    {
        KvmException.Check(KvmNative.VcpuGetRegs(_handle.Fd, out KvmRegs regs), "KVM_GET_REGS");
        return regs;
    }

    public void SetRegs(in KvmRegs regs) => KvmException.Check(KvmNative.VcpuSetRegs(_handle.Fd, regs), "KVM_SET_REGS");

    public KvmSregs GetSregs()
    {
        KvmException.Check(KvmNative.VcpuGetSregs(_handle.Fd, out KvmSregs sregs), "KVM_GET_SREGS");
        return sregs;
    }

    public void SetSregs(in KvmSregs sregs) => KvmException.Check(KvmNative.VcpuSetSregs(_handle.Fd, sregs), "KVM_SET_SREGS");

    public void Dispose()
    {
        _run.Dispose();
        _handle.Dispose();
    }
}
