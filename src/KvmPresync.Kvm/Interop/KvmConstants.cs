namespace KvmPresync.Kvm.Interop;

/// <summary>Capabilities from &lt;linux/kvm.h&gt; the engine checks or enables.</summary>
public enum KvmCap : uint
{
    Irqchip = 0,
    UserMemory = 3,
    SetTssAddr = 4,
    ExtCpuid = 7,
    NrVcpus = 9,
    Pit2 = 33,
    AdjustClock = 39,
    VcpuEvents = 41,
    DebugRegs = 50,
    Xsave = 55,
    Xcrs = 56,
    ImmediateExit = 136,
    ManualDirtyLogProtect2 = 168,
    DirtyLogRing = 192,
}

/// <summary>KVM exit reasons the VMM handles or reports (<c>kvm_run.exit_reason</c>).</summary>
public enum KvmExitReason : uint
{
    Unknown = 0,
    Exception = 1,
    Io = 2,
    Hypercall = 3,
    Debug = 4,
    Hlt = 5,
    Mmio = 6,
    IrqWindowOpen = 7,
    Shutdown = 8,
    FailEntry = 9,
    Intr = 10,
    SetTpr = 11,
    TprAccess = 12,
    Nmi = 16,
    InternalError = 17,
    SystemEvent = 24,
}

internal static class KvmConstants
{
    public const int ApiVersion = 12;
    public const uint MemLogDirtyPages = 1;
    public const ulong DirtyLogManualProtectEnable = 1;
    public const int IoDirectionIn = 0;
    public const int IoDirectionOut = 1;
    public const uint MpStateRunnable = 0;
    public const int Eintr = 4;
}
