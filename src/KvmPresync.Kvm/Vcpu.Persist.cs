using KvmPresync.Kvm.Interop;

namespace KvmPresync.Kvm;

/// <summary>Everything KVM holds for one vCPU. Blobs are the kernel's structs, sized by this kernel.</summary>
public sealed record VcpuState(
    uint Id,
    KvmRegs Regs,
    KvmSregs Sregs,
    byte[] Fpu,
    byte[] Xsave,
    byte[] Xcrs,
    (uint Index, ulong Value)[] Msrs,
    byte[] Lapic,
    byte[] Events,
    uint MpState,
    byte[] DebugRegs);

// Save and restore of a vCPU's state, next to the vCPU it belongs to (Firecracker's persist.rs pattern).
public sealed unsafe partial class Vcpu
{
    /// <summary>Saves the complete vCPU state. The vCPU must not be running.</summary>
    public VcpuState SaveState()
    {
        int fd = _handle.Fd;
        KvmRegs regs = GetRegs();
        KvmSregs sregs = GetSregs();
        byte[] xsave = Get(fd, KvmLayout.Xsave, &KvmNative.VcpuGetXsave, "KVM_GET_XSAVE");
        byte[] fpu = FpuFromXsave(xsave); // what KVM_GET_FPU returns, without its ioctl (1–2.4 ms on kvm_pvm, in the downtime)
        byte[] xcrs = Get(fd, KvmLayout.Xcrs, &KvmNative.VcpuGetXcrs, "KVM_GET_XCRS");
        byte[] lapic = Vm.Options.InKernelIrqchip ? Get(fd, KvmLayout.Lapic, &KvmNative.VcpuGetLapic, "KVM_GET_LAPIC") : [];
        byte[] events = Get(fd, KvmLayout.VcpuEvents, &KvmNative.VcpuGetEvents, "KVM_GET_VCPU_EVENTS");
        byte[] debug = Get(fd, KvmLayout.DebugRegs, &KvmNative.VcpuGetDebugregs, "KVM_GET_DEBUGREGS");
        KvmException.Check(KvmNative.VcpuGetMpState(fd, out uint mp), "KVM_GET_MP_STATE");
        return new VcpuState(Id, regs, sregs, fpu, xsave, xcrs, SaveMsrs(fd), lapic, events, mp, debug);
    }

    /// <summary>Restores a state saved by <see cref="SaveState"/> (here or on another host with the same kernel structs).</summary>
    public void RestoreState(VcpuState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        int fd = _handle.Fd;
        Vm.CheckLength(state.Fpu, KvmLayout.Fpu, "FPU");
        Vm.CheckLength(state.Xsave, KvmLayout.Xsave, "XSAVE");
        Vm.CheckLength(state.Xcrs, KvmLayout.Xcrs, "XCRS");
        Vm.CheckLength(state.Lapic, Vm.Options.InKernelIrqchip ? KvmLayout.Lapic : 0, "LAPIC");
        Vm.CheckLength(state.Events, KvmLayout.VcpuEvents, "vCPU events");
        Vm.CheckLength(state.DebugRegs, KvmLayout.DebugRegs, "debug registers");
        // Order as other VMMs restore: mode first (sregs), then registers, extended state, MSRs, LAPIC, events.
        KvmException.Check(KvmNative.VcpuSetMpState(fd, state.MpState), "KVM_SET_MP_STATE");
        SetSregs(state.Sregs);
        SetRegs(state.Regs);
        Set(fd, state.Fpu, &KvmNative.VcpuSetFpu, "KVM_SET_FPU");
        Set(fd, state.Xsave, &KvmNative.VcpuSetXsave, "KVM_SET_XSAVE");
        Set(fd, state.Xcrs, &KvmNative.VcpuSetXcrs, "KVM_SET_XCRS");
        Set(fd, state.DebugRegs, &KvmNative.VcpuSetDebugregs, "KVM_SET_DEBUGREGS");
        RestoreMsrs(fd, state.Msrs);
        if (state.Lapic.Length > 0) Set(fd, state.Lapic, &KvmNative.VcpuSetLapic, "KVM_SET_LAPIC");
        Set(fd, state.Events, &KvmNative.VcpuSetEvents, "KVM_SET_VCPU_EVENTS");
    }

    /// <summary>KVM_GET_FPU's answer, straight from the vCPU (tests compare it with <see cref="FpuFromXsave"/>).</summary>
    internal byte[] GetFpu() => Get(_handle.Fd, KvmLayout.Fpu, &KvmNative.VcpuGetFpu, "KVM_GET_FPU");

    /// <summary>
    /// struct kvm_fpu filled from the legacy (FXSAVE) region of a KVM_GET_XSAVE buffer, field for field as the kernel's
    /// KVM_GET_FPU fills it from the vCPU's FXSAVE image (mxcsr is left 0, as KVM_GET_FPU leaves it). The restore sets the FPU
    /// before the XSAVE area, which covers all of it, so the FPU blob only has to be what it always was.
    /// FXSAVE offsets (Intel SDM vol. 1, table 10-2): FCW 0, FSW 2, abridged FTW 4, FOP 6, FIP 8, FDP 16, ST0–7 32, XMM0–15 160.
    /// </summary>
    internal static byte[] FpuFromXsave(ReadOnlySpan<byte> xsave)
    {
        var fpu = new byte[KvmLayout.Fpu];
        xsave.Slice(32, 128).CopyTo(fpu.AsSpan(KvmLayout.FpuFpr));
        xsave.Slice(0, 2).CopyTo(fpu.AsSpan(KvmLayout.FpuFcw));
        xsave.Slice(2, 2).CopyTo(fpu.AsSpan(KvmLayout.FpuFsw));
        fpu[KvmLayout.FpuFtwx] = xsave[4];
        xsave.Slice(6, 2).CopyTo(fpu.AsSpan(KvmLayout.FpuLastOpcode));
        xsave.Slice(8, 8).CopyTo(fpu.AsSpan(KvmLayout.FpuLastIp));
        xsave.Slice(16, 8).CopyTo(fpu.AsSpan(KvmLayout.FpuLastDp));
        xsave.Slice(160, 256).CopyTo(fpu.AsSpan(KvmLayout.FpuXmm));
        return fpu;
    }

    private static byte[] Get(int fd, int size, delegate*<int, byte*, int> get, string op)
    {
        var blob = new byte[size];
        fixed (byte* p = blob) KvmException.Check(get(fd, p), op);
        return blob;
    }

    private static void Set(int fd, byte[] blob, delegate*<int, byte*, int> set, string op)
    {
        fixed (byte* p = blob) KvmException.Check(set(fd, p), op);
    }

    /// <summary>
    /// Reads every MSR KVM lists; KVM_GET_MSRS stops at the first it cannot read, which is skipped. The readable
    /// set is remembered per KVM system, so later saves (a migration's downtime) take one ioctl.
    /// </summary>
    private (uint, ulong)[] SaveMsrs(int fd)
    {
        if (Vm.System.ReadableMsrs is { } known && TryReadAll(fd, known, out (uint, ulong)[] fast)) return fast;
        uint[] indices = Vm.System.MsrIndexList();
        var result = new List<(uint, ulong)>(indices.Length);
        var entries = new KvmMsrEntry[indices.Length];
        int start = 0;
        while (start < indices.Length)
        {
            int n = indices.Length - start;
            for (int i = 0; i < n; i++) entries[i] = new KvmMsrEntry { Index = indices[start + i] };
            int read;
            fixed (KvmMsrEntry* p = entries) read = KvmException.Check(KvmNative.VcpuGetMsrs(fd, p, (uint)n), "KVM_GET_MSRS");
            for (int i = 0; i < read; i++) result.Add((entries[i].Index, entries[i].Data));
            start += read + 1; // skip the one that could not be read
        }
        Vm.System.ReadableMsrs = result.Select(m => m.Item1).ToArray();
        return [.. result];
    }

    private static bool TryReadAll(int fd, uint[] indices, out (uint, ulong)[] msrs)
    {
        var entries = new KvmMsrEntry[indices.Length];
        for (int i = 0; i < indices.Length; i++) entries[i] = new KvmMsrEntry { Index = indices[i] };
        int read;
        fixed (KvmMsrEntry* p = entries) read = KvmException.Check(KvmNative.VcpuGetMsrs(fd, p, (uint)entries.Length), "KVM_GET_MSRS");
        if (read != entries.Length)
        {
            msrs = [];
            return false;
        }
        // A plain loop: this runs in a migration's downtime, and LINQ over a struct is generic code compiled at first use (ms).
        msrs = new (uint, ulong)[read];
        for (int i = 0; i < read; i++) msrs[i] = (entries[i].Index, entries[i].Data);
        return true;
    }

    private static void RestoreMsrs(int fd, (uint Index, ulong Value)[] msrs)
    {
        var entries = new KvmMsrEntry[msrs.Length];
        for (int i = 0; i < msrs.Length; i++) entries[i] = new KvmMsrEntry { Index = msrs[i].Index, Data = msrs[i].Value };
        int written;
        fixed (KvmMsrEntry* p = entries) written = KvmException.Check(KvmNative.VcpuSetMsrs(fd, p, (uint)entries.Length), "KVM_SET_MSRS");
        if (written != entries.Length)
            throw new KvmException("KVM_SET_MSRS", $"only {written} of {entries.Length} MSRs were accepted; MSR 0x{entries[written].Index:x} was refused");
    }
}
