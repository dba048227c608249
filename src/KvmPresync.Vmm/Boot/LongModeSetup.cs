using System.Buffers.Binary;
using KvmPresync.Kvm.Interop;
using KvmPresync.Kvm;
using KvmPresync.Memory;

namespace KvmPresync.Vmm.Boot;

/// <summary>
/// Puts a vCPU directly into 64-bit long mode at CPL 3: a flat GDT, identity page tables over all guest
/// memory with 2 MiB user pages, CR0/CR4/EFER for paging, IOPL 3 (port I/O allowed), RSP at the stack top
/// and RIP at the entry point. The guests run in ring 3 because software KVM back ends (kvm_pvm) run CPL-3
/// code natively but emulate CPL-0 code instruction by instruction — measured ~360x slower here.
/// Every byte it writes into guest memory is recorded in the caller's VMM-writes bitmap (KVM's log
/// does not see the VMM's own writes).
/// </summary>
public static class LongModeSetup
{
    private const ulong Cr0Pe = 1, Cr0Mp = 1 << 1, Cr0Et = 1 << 4, Cr0Ne = 1 << 5, Cr0Wp = 1 << 16, Cr0Pg = 1UL << 31;
    private const ulong Cr4Pae = 1 << 5, Cr4Osfxsr = 1 << 9, Cr4Osxmmexcpt = 1 << 10;
    private const ulong EferLme = 1 << 8, EferLma = 1 << 10;
    // Accessed/dirty pre-set so the CPU (or a shadow MMU) never writes them back into guest memory.
    private const ulong PtePresent = 1, PteWritable = 2, PteUser = 4, PteAccessed = 1 << 5, PteDirty = 1 << 6, PtePageSize = 1 << 7;
    private const ulong GiB = 1UL << 30, TwoMiB = 2UL << 20;
    private const int GdtBytes = 40;
    private const ulong RflagsIopl3 = 3 << 12, RflagsFixed = 0x2;

    /// <summary>Largest guest memory the page-table area can map (one page directory per GiB).</summary>
    public const long MaxMemory = (long)((GuestAbi.PageTableEndGpa - GuestAbi.PageTableGpa) / 4096 - 2) * (long)GiB;

    public static void WriteTables(GuestMemory memory, DirtyBitmap vmmWrites)
    {
        if (memory.Size > MaxMemory)
            throw new ArgumentException($"guest memory {memory.Size} bytes exceeds the {MaxMemory >> 30} GiB the boot page tables map", nameof(memory));
        if ((ulong)memory.Size < GuestAbi.LoadGpa + TwoMiB)
            throw new ArgumentException($"guest memory {memory.Size} bytes is too small: at least {(GuestAbi.LoadGpa + TwoMiB) >> 20} MiB are needed for the boot layout and image", nameof(memory));

        // GDT: null, kernel code (0x08), kernel data (0x10), user code (0x18), user data (0x20); accessed bits pre-set.
        Span<byte> gdt = memory.Slice((long)GuestAbi.GdtGpa, GdtBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[8..], 0x00AF9B000000FFFF);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[16..], 0x00CF93000000FFFF);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[24..], 0x00AFFB000000FFFF);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[32..], 0x00CFF3000000FFFF);
        MarkWritten(vmmWrites, memory, GuestAbi.GdtGpa, GdtBytes);

        ulong pml4 = GuestAbi.PageTableGpa, pdpt = pml4 + 4096, pdBase = pdpt + 4096;
        long gibs = (long)(((ulong)memory.Size + GiB - 1) / GiB);
        long tableBytes = (2 + gibs) * 4096;
        memory.Slice((long)pml4, (int)tableBytes).Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(memory.Slice((long)pml4, 8), pdpt | PtePresent | PteWritable | PteUser | PteAccessed);
        for (long g = 0; g < gibs; g++)
        {
            ulong pd = pdBase + (ulong)g * 4096;
            BinaryPrimitives.WriteUInt64LittleEndian(memory.Slice((long)pdpt + g * 8, 8), pd | PtePresent | PteWritable | PteUser | PteAccessed);
            Span<byte> pdPage = memory.Slice((long)pd, 4096);
            for (int e = 0; e < 512; e++)
            {
                ulong addr = (ulong)g * GiB + (ulong)e * TwoMiB;
                if (addr >= (ulong)memory.Size) break;
                BinaryPrimitives.WriteUInt64LittleEndian(pdPage[(e * 8)..], addr | PtePresent | PteWritable | PteUser | PteAccessed | PteDirty | PtePageSize);
            }
        }
        MarkWritten(vmmWrites, memory, pml4, tableBytes);
    }

    /// <summary>Sets the special and general registers for long mode entry at <paramref name="entry"/>.</summary>
    public static void SetRegisters(Vcpu vcpu, ulong entry, ulong stackTop, ulong rsi = 0)
    {
        KvmSregs s = vcpu.GetSregs();
        var code = new KvmSegment { Base = 0, Limit = 0xFFFFFFFF, Selector = 0x18 | 3, Type = 11, Present = 1, Dpl = 3, Db = 0, S = 1, L = 1, G = 1 };
        var data = new KvmSegment { Base = 0, Limit = 0xFFFFFFFF, Selector = 0x20 | 3, Type = 3, Present = 1, Dpl = 3, Db = 1, S = 1, L = 0, G = 1 };
        s.Cs = code;
        s.Ds = s.Es = s.Fs = s.Gs = s.Ss = data;
        s.Gdt = new KvmDtable { Base = GuestAbi.GdtGpa, Limit = GdtBytes - 1 };
        s.Cr3 = GuestAbi.PageTableGpa;
        s.Cr4 = Cr4Pae | Cr4Osfxsr | Cr4Osxmmexcpt;
        s.Cr0 = Cr0Pe | Cr0Mp | Cr0Et | Cr0Ne | Cr0Wp | Cr0Pg;
        s.Efer = EferLme | EferLma;
        vcpu.SetSregs(s);
        vcpu.SetRegs(new KvmRegs { Rip = entry, Rsp = stackTop, Rflags = RflagsFixed | RflagsIopl3, Rsi = rsi });
    }

    internal static void MarkWritten(DirtyBitmap vmmWrites, GuestMemory memory, ulong gpa, long length)
    {
        long first = (long)gpa / memory.PageSize, last = ((long)gpa + length - 1) / memory.PageSize;
        for (long p = first; p <= last; p++) vmmWrites.Set(p);
    }
}
