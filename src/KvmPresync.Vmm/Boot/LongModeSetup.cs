using System.Buffers.Binary;
using KvmPresync.Kvm.Interop;
using KvmPresync.Kvm;
using KvmPresync.Memory;

namespace KvmPresync.Vmm.Boot;

/// <summary>
/// Puts a vCPU directly into 64-bit long mode at CPL 3: a flat GDT, page tables mapping all guest RAM (its
/// regions one after another from virtual 0, see <see cref="WriteTables"/>) with 2 MiB user pages, CR0/CR4/EFER for paging, IOPL 3 (port I/O allowed), RSP at the stack top
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

    /// <summary>
    /// Writes the GDT and page tables into region 0 (which must start at GPA 0). The guest sees its RAM as one
    /// virtual range: virtual address <c>i × page size</c> maps the page with linear index <c>i</c> of
    /// <paramref name="memory"/> (region 0's pages, then region 1's, ...), so a hole between regions in guest-physical
    /// space is skipped and the guest's page numbers are the map's indices. Regions must be 2 MiB aligned in both spaces.
    /// </summary>
    public static void WriteTables(GuestMemoryMap memory, DirtyBitmap vmmWrites)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (memory.SizeBytes > MaxMemory)
            throw new ArgumentException($"guest memory {memory.SizeBytes} bytes exceeds the {MaxMemory >> 30} GiB the boot page tables map", nameof(memory));
        GuestRegion first = memory.Regions[0];
        if (first.GuestPhysicalAddress != 0)
            throw new ArgumentException($"{first}: the first region must start at guest-physical 0 (it holds the boot layout)", nameof(memory));
        if ((ulong)first.Memory.Size < GuestAbi.LoadGpa + TwoMiB)
            throw new ArgumentException($"guest memory region 0 of {first.Memory.Size} bytes is too small: at least {(GuestAbi.LoadGpa + TwoMiB) >> 20} MiB are needed for the boot layout and image", nameof(memory));
        for (int r = 0; r < memory.Regions.Count; r++)
        {
            GuestRegion region = memory.Regions[r];
            bool last = r == memory.Regions.Count - 1;
            if (region.GuestPhysicalAddress % TwoMiB != 0 || (!last && (ulong)region.Memory.Size % TwoMiB != 0))
                throw new ArgumentException($"{region}: the boot page tables map 2 MiB pages, so regions must start (and all but the last end) on 2 MiB boundaries", nameof(memory));
            if (r > 0 && region.GuestPhysicalAddress < memory.Regions[r - 1].EndAddress)
                throw new ArgumentException($"{region}: regions must be in address order", nameof(memory));
        }
        Span<byte> low = first.Memory.Slice(0, (int)GuestAbi.PageTableEndGpa);

        // GDT: null, kernel code (0x08), kernel data (0x10), user code (0x18), user data (0x20); accessed bits pre-set.
        Span<byte> gdt = low.Slice((int)GuestAbi.GdtGpa, GdtBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[8..], 0x00AF9B000000FFFF);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[16..], 0x00CF93000000FFFF);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[24..], 0x00AFFB000000FFFF);
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[32..], 0x00CFF3000000FFFF);
        MarkWritten(vmmWrites, memory, GuestAbi.GdtGpa, GdtBytes);

        ulong pml4 = GuestAbi.PageTableGpa, pdpt = pml4 + 4096, pdBase = pdpt + 4096;
        long total = memory.SizeBytes;
        long gibs = (long)(((ulong)total + GiB - 1) / GiB);
        int tableBytes = (int)((2 + gibs) * 4096);
        low.Slice((int)pml4, tableBytes).Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(low[(int)pml4..], pdpt | PtePresent | PteWritable | PteUser | PteAccessed);
        long pagesPer2M = (long)TwoMiB / memory.PageSize;
        for (long g = 0; g < gibs; g++)
        {
            ulong pd = pdBase + (ulong)g * 4096;
            BinaryPrimitives.WriteUInt64LittleEndian(low[(int)(pdpt + (ulong)g * 8)..], pd | PtePresent | PteWritable | PteUser | PteAccessed);
            Span<byte> pdPage = low.Slice((int)pd, 4096);
            for (int e = 0; e < 512; e++)
            {
                long index = (g * 512 + e) * pagesPer2M;  // linear index of the 2 MiB virtual page's first 4 KiB page
                if (index >= memory.PageCount) break;
                ulong gpa = memory.GuestPhysicalAddressOf(index);
                BinaryPrimitives.WriteUInt64LittleEndian(pdPage[(e * 8)..], gpa | PtePresent | PteWritable | PteUser | PteAccessed | PteDirty | PtePageSize);
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

    /// <summary>Records that the VMM wrote [<paramref name="gpa"/>, +<paramref name="length"/>) (in one region), by linear page index.</summary>
    internal static void MarkWritten(DirtyBitmap vmmWrites, GuestMemoryMap memory, ulong gpa, long length)
    {
        if (!memory.TryIndexOf(gpa, out long first) || !memory.TryIndexOf(gpa + (ulong)length - 1, out long last))
            throw new ArgumentOutOfRangeException(nameof(gpa), gpa, $"[0x{gpa:x}, +{length}) is not guest RAM");
        for (long p = first; p <= last; p++) vmmWrites.Set(p);
    }
}
