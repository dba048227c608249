using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvmPresync.Kvm.Interop;

// Mirrors of the <linux/kvm.h> structs C# reads field by field. tests/…/Interop/LayoutTests.cs proves
// every size and offset here against the shim's kp_layout_sizeof / kp_layout_offsetof.

[StructLayout(LayoutKind.Sequential)]
public struct KvmRegs
{
    public ulong Rax, Rbx, Rcx, Rdx, Rsi, Rdi, Rsp, Rbp;
    public ulong R8, R9, R10, R11, R12, R13, R14, R15;
    public ulong Rip, Rflags;
}

[StructLayout(LayoutKind.Sequential)]
public struct KvmSegment
{
    public ulong Base;
    public uint Limit;
    public ushort Selector;
    public byte Type;
    public byte Present, Dpl, Db, S, L, G, Avl;
    public byte Unusable;
    public byte Padding;
}

[StructLayout(LayoutKind.Sequential)]
public struct KvmDtable
{
    public ulong Base;
    public ushort Limit;
    private ushort _padding0, _padding1, _padding2;
}

[StructLayout(LayoutKind.Sequential)]
public struct KvmSregs
{
    public KvmSegment Cs, Ds, Es, Fs, Gs, Ss, Tr, Ldt;
    public KvmDtable Gdt, Idt;
    public ulong Cr0, Cr2, Cr3, Cr4, Cr8, Efer, ApicBase;
    public InterruptBitmap InterruptBitmap;
}

[InlineArray(4)]
public struct InterruptBitmap
{
    private ulong _element0;
}

[StructLayout(LayoutKind.Sequential)]
internal struct KvmMsrEntry
{
    public uint Index;
    public uint Reserved;
    public ulong Data;
}

[StructLayout(LayoutKind.Sequential)]
internal struct KvmCpuidEntry2
{
    public uint Function, Index, Flags, Eax, Ebx, Ecx, Edx;
    private uint _padding0, _padding1, _padding2;
}

/// <summary>Offsets into the mmap'ed <c>struct kvm_run</c> that the run loop reads.</summary>
internal static class KvmRunOffsets
{
    public const int ImmediateExit = 1;
    public const int ExitReason = 8;
    public const int IoDirection = 32;
    public const int IoSize = 33;
    public const int IoPort = 34;
    public const int IoCount = 36;
    public const int IoDataOffset = 40;
    public const int MmioPhysAddr = 32;
    public const int FailEntryReason = 32;
    public const int InternalSuberror = 32;
}
