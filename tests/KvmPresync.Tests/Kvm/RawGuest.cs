using KvmPresync.Kvm.Interop;
using KvmPresync.Kvm;
using KvmPresync.Memory;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Boot;

namespace KvmPresync.Tests.Kvm;

/// <summary>
/// A VM running hand-assembled long-mode code, for tests of the KVM layer that must not depend on the
/// workload guests: each "phase" writes one byte into each of a list of pages and then does
/// <c>out 0x600, eax</c>, so after each exit the test knows exactly which pages the guest wrote.
/// A first, empty "settle" phase is always prepended: kvm_pvm's shadow MMU maps a page writable on its
/// first (read or execute) fault when the guest's page-table entry is already dirty, which logs the code
/// page once; <see cref="Settle"/> runs that phase and clears the log so the phases start exact.
/// </summary>
internal sealed class RawGuest : IDisposable
{
    public const ushort PhasePort = 0x600;

    private RawGuest(Vm vm, GuestMemory memory, IReadOnlyList<MemorySlot> slots, Vcpu vcpu)
    {
        Vm = vm;
        Memory = memory;
        Slots = slots;
        Vcpu = vcpu;
    }

    public Vm Vm { get; }
    /// <summary>Slot 0's memory (GPA 0).</summary>
    public GuestMemory Memory { get; }
    public MemorySlot Slot => Slots[0];
    /// <summary>Slot 0 at GPA 0 and, if asked for, slot 1 at 4 GiB.</summary>
    public IReadOnlyList<MemorySlot> Slots { get; }
    public Vcpu Vcpu { get; }

    public static RawGuest Create(KvmSystem kvm, long memorySize, params long[][] phases) => Create(kvm, memorySize, 0, phases);

    /// <summary>
    /// With <paramref name="highBytes"/> &gt; 0, a second slot of that size at GPA 4 GiB; the phases' page numbers are
    /// linear (slot 0's pages, then slot 1's: the page tables map slot 1 right after slot 0 in virtual space).
    /// </summary>
    public static RawGuest Create(KvmSystem kvm, long memorySize, long highBytes, params long[][] phases)
    {
        var memory = GuestMemory.Create(memorySize);
        GuestMemory? high = highBytes > 0 ? GuestMemory.Create(highBytes) : null;
        Vm vm = kvm.CreateVm();
        var slots = new List<MemorySlot> { vm.AddMemorySlot(0, 0, memory) };
        var regions = new List<GuestRegion> { new(0, 0, memory) };
        if (high is not null)
        {
            slots.Add(vm.AddMemorySlot(1, GuestAbi.HighMemoryGpa, high));
            regions.Add(new GuestRegion(1, GuestAbi.HighMemoryGpa, high));
        }
        Vcpu vcpu = vm.CreateVcpu(0);
        var map = new GuestMemoryMap(regions);
        LongModeSetup.WriteTables(map, new DirtyBitmap(map.PageCount));
        var code = new List<byte>();
        foreach (long[] pages in phases.Prepend([]))
        {
            foreach (long page in pages)
            {
                code.AddRange([0x48, 0xB8]); // mov rax, imm64
                code.AddRange(BitConverter.GetBytes((ulong)(page * memory.PageSize))); // little-endian on x86-64
                code.AddRange([0xC6, 0x00, 0x5A]); // mov byte [rax], 0x5a
            }
            code.AddRange([0x66, 0xBA, PhasePort & 0xFF, PhasePort >> 8, 0xEF]); // mov dx, port; out dx, eax
        }
        code.AddRange([0xEB, 0xFE]); // jmp $ (never reached by the tests)
        code.ToArray().CopyTo(memory.Slice((long)GuestAbi.LoadGpa, code.Count));
        LongModeSetup.SetRegisters(vcpu, GuestAbi.LoadGpa, GuestAbi.StackTopGpa);
        return new RawGuest(vm, memory, slots, vcpu);
    }

    /// <summary>Runs the empty settle phase and clears whatever it logged (the code and stack pages' first faults).</summary>
    public void Settle()
    {
        RunPhase();
        Clear(DirtyPages());
        Assert.Empty(DirtyPages());
    }

    /// <summary>Runs to the next phase port exit, failing on anything else.</summary>
    public void RunPhase() => AssertPhaseExit(RunWithWatchdog());

    /// <summary>Runs to the next exit; a guest stuck for 10 s is kicked out and reported as such.</summary>
    public VcpuExit RunWithWatchdog()
    {
        using var watchdog = new Timer(_ => Vcpu.Kick(), null, TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan);
        VcpuExit e = Vcpu.Run();
        Assert.False(e.Interrupted, $"guest still running after 10 s at RIP 0x{Vcpu.GetRegs().Rip:x}");
        return e;
    }

    private void AssertPhaseExit(VcpuExit e)
    {
        Assert.True(e.Reason == KvmExitReason.Io && e.IsOut && e.Port == PhasePort, $"expected OUT 0x{PhasePort:x}, got {e} at RIP 0x{Vcpu.GetRegs().Rip:x}");
    }

    public SortedSet<long> DirtyPages()
    {
        var words = new ulong[Slot.BitmapWords];
        Vm.GetDirtyLog(Slot, words);
        var set = new SortedSet<long>();
        for (int w = 0; w < words.Length; w++)
            for (int b = 0; b < 64; b++)
                if ((words[w] & (1UL << b)) != 0) set.Add(w * 64L + b);
        return set;
    }

    /// <summary>Clears every page in <paramref name="pages"/> from the log, 64-page chunk by chunk.</summary>
    public void Clear(IEnumerable<long> pages)
    {
        foreach (IGrouping<long, long> chunk in pages.GroupBy(p => p / 64))
        {
            ulong mask = 0;
            foreach (long p in chunk) mask |= 1UL << (int)(p % 64);
            long first = chunk.Key * 64;
            long count = Math.Min(64, Slot.PageCount - first);
            Vm.ClearDirtyLog(Slot, first, count, [mask]);
        }
    }

    public void Dispose()
    {
        Vm.Dispose();
        foreach (MemorySlot s in Slots) s.Memory.Dispose();
    }
}
