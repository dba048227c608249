namespace KvmPresync.Kvm.Interop;

/// <summary>Sizes of the kernel structs carried as opaque blobs, read once from the shim (they are constants of the build).</summary>
internal static class KvmLayout
{
    public static readonly int Fpu = Size("kvm_fpu");
    public static readonly int Xsave = Size("kvm_xsave");
    public static readonly int FpuFpr = Offset("kvm_fpu", "fpr");
    public static readonly int FpuFcw = Offset("kvm_fpu", "fcw");
    public static readonly int FpuFsw = Offset("kvm_fpu", "fsw");
    public static readonly int FpuFtwx = Offset("kvm_fpu", "ftwx");
    public static readonly int FpuLastOpcode = Offset("kvm_fpu", "last_opcode");
    public static readonly int FpuLastIp = Offset("kvm_fpu", "last_ip");
    public static readonly int FpuLastDp = Offset("kvm_fpu", "last_dp");
    public static readonly int FpuXmm = Offset("kvm_fpu", "xmm");
    public static readonly int Xcrs = Size("kvm_xcrs");
    public static readonly int Lapic = Size("kvm_lapic_state");
    public static readonly int VcpuEvents = Size("kvm_vcpu_events");
    public static readonly int DebugRegs = Size("kvm_debugregs");
    public static readonly int Irqchip = Size("kvm_irqchip");
    public static readonly int Pit2 = Size("kvm_pit_state2");
    public static readonly int ClockData = Size("kvm_clock_data");
    public static readonly int ClockFlagsOffset = (int)KvmPresync.Interop.Native.LayoutOffsetof("kvm_clock_data", "flags");

    private static int Offset(string type, string field)
    {
        long n = KvmPresync.Interop.Native.LayoutOffsetof(type, field);
        if (n < 0) throw new InvalidOperationException($"libkvmpresync does not know {type}.{field}: the shim and the engine are out of step; rebuild native/");
        return (int)n;
    }

    private static int Size(string type)
    {
        long n = KvmPresync.Interop.Native.LayoutSizeof(type);
        if (n <= 0) throw new InvalidOperationException($"libkvmpresync does not know struct {type}: the shim and the engine are out of step; rebuild native/");
        return (int)n;
    }
}
