using System.Runtime.InteropServices;
using KvmPresync.Interop;
using KvmPresync.Kvm.Interop;
using KvmPresync.Wire.Interop;
using KvmPresync.Vmm;

namespace KvmPresync.Tests.Interop;

/// <summary>Every struct shared with C has the size and field offsets the C compiler gave it.</summary>
public sealed class LayoutTests
{
    [Theory]
    [InlineData("kvm_regs", typeof(KvmRegs))]
    [InlineData("kvm_segment", typeof(KvmSegment))]
    [InlineData("kvm_dtable", typeof(KvmDtable))]
    [InlineData("kvm_sregs", typeof(KvmSregs))]
    [InlineData("kvm_msr_entry", typeof(KvmMsrEntry))]
    [InlineData("kvm_cpuid_entry2", typeof(KvmCpuidEntry2))]
    public void StructSizeMatchesC(string cType, Type managed)
    {
        Assert.Equal(Native.LayoutSizeof(cType), Marshal.SizeOf(managed));
    }

    [Theory]
    [InlineData("kvm_regs", "rax", nameof(KvmRegs.Rax))]
    [InlineData("kvm_regs", "rsp", nameof(KvmRegs.Rsp))]
    [InlineData("kvm_regs", "r8", nameof(KvmRegs.R8))]
    [InlineData("kvm_regs", "r15", nameof(KvmRegs.R15))]
    [InlineData("kvm_regs", "rip", nameof(KvmRegs.Rip))]
    [InlineData("kvm_regs", "rflags", nameof(KvmRegs.Rflags))]
    public void RegsOffsetsMatchC(string cType, string cField, string field) => AssertOffset<KvmRegs>(cType, cField, field);

    [Theory]
    [InlineData("base", nameof(KvmSegment.Base))]
    [InlineData("limit", nameof(KvmSegment.Limit))]
    [InlineData("selector", nameof(KvmSegment.Selector))]
    [InlineData("type", nameof(KvmSegment.Type))]
    [InlineData("present", nameof(KvmSegment.Present))]
    [InlineData("dpl", nameof(KvmSegment.Dpl))]
    [InlineData("db", nameof(KvmSegment.Db))]
    [InlineData("s", nameof(KvmSegment.S))]
    [InlineData("l", nameof(KvmSegment.L))]
    [InlineData("g", nameof(KvmSegment.G))]
    [InlineData("avl", nameof(KvmSegment.Avl))]
    [InlineData("unusable", nameof(KvmSegment.Unusable))]
    public void SegmentOffsetsMatchC(string cField, string field) => AssertOffset<KvmSegment>("kvm_segment", cField, field);

    [Theory]
    [InlineData("cs", nameof(KvmSregs.Cs))]
    [InlineData("ss", nameof(KvmSregs.Ss))]
    [InlineData("ldt", nameof(KvmSregs.Ldt))]
    [InlineData("gdt", nameof(KvmSregs.Gdt))]
    [InlineData("idt", nameof(KvmSregs.Idt))]
    [InlineData("cr0", nameof(KvmSregs.Cr0))]
    [InlineData("cr3", nameof(KvmSregs.Cr3))]
    [InlineData("cr4", nameof(KvmSregs.Cr4))]
    [InlineData("cr8", nameof(KvmSregs.Cr8))]
    [InlineData("efer", nameof(KvmSregs.Efer))]
    [InlineData("apic_base", nameof(KvmSregs.ApicBase))]
    [InlineData("interrupt_bitmap", nameof(KvmSregs.InterruptBitmap))]
    public void SregsOffsetsMatchC(string cField, string field) => AssertOffset<KvmSregs>("kvm_sregs", cField, field);

    [Fact]
    public void DtableAndMsrAndCpuidOffsetsMatchC()
    {
        AssertOffset<KvmDtable>("kvm_dtable", "base", nameof(KvmDtable.Base));
        AssertOffset<KvmDtable>("kvm_dtable", "limit", nameof(KvmDtable.Limit));
        AssertOffset<KvmMsrEntry>("kvm_msr_entry", "index", nameof(KvmMsrEntry.Index));
        AssertOffset<KvmMsrEntry>("kvm_msr_entry", "data", nameof(KvmMsrEntry.Data));
        AssertOffset<KvmCpuidEntry2>("kvm_cpuid_entry2", "function", nameof(KvmCpuidEntry2.Function));
        AssertOffset<KvmCpuidEntry2>("kvm_cpuid_entry2", "index", nameof(KvmCpuidEntry2.Index));
        AssertOffset<KvmCpuidEntry2>("kvm_cpuid_entry2", "eax", nameof(KvmCpuidEntry2.Eax));
        AssertOffset<KvmCpuidEntry2>("kvm_cpuid_entry2", "edx", nameof(KvmCpuidEntry2.Edx));
    }

    [Theory]
    [InlineData("immediate_exit", KvmRunOffsets.ImmediateExit)]
    [InlineData("exit_reason", KvmRunOffsets.ExitReason)]
    [InlineData("io.direction", KvmRunOffsets.IoDirection)]
    [InlineData("io.size", KvmRunOffsets.IoSize)]
    [InlineData("io.port", KvmRunOffsets.IoPort)]
    [InlineData("io.count", KvmRunOffsets.IoCount)]
    [InlineData("io.data_offset", KvmRunOffsets.IoDataOffset)]
    [InlineData("mmio.phys_addr", KvmRunOffsets.MmioPhysAddr)]
    [InlineData("fail_entry.hardware_entry_failure_reason", KvmRunOffsets.FailEntryReason)]
    [InlineData("internal.suberror", KvmRunOffsets.InternalSuberror)]
    public void KvmRunOffsetsMatchC(string cField, int offset)
    {
        Assert.Equal(Native.LayoutOffsetof("kvm_run", cField), offset);
    }

    [Theory]
    [InlineData("magic", GuestAbi.BootInfo.Magic)]
    [InlineData("version", GuestAbi.BootInfo.Version)]
    [InlineData("workload", GuestAbi.BootInfo.Workload)]
    [InlineData("flags", GuestAbi.BootInfo.Flags)]
    [InlineData("memory_size", GuestAbi.BootInfo.MemorySize)]
    [InlineData("seed", GuestAbi.BootInfo.Seed)]
    [InlineData("heap_start", GuestAbi.BootInfo.HeapStart)]
    [InlineData("fill_bytes", GuestAbi.BootInfo.FillBytes)]
    [InlineData("zero_permille", GuestAbi.BootInfo.ZeroPermille)]
    [InlineData("heartbeat_ms", GuestAbi.BootInfo.HeartbeatMs)]
    [InlineData("params", GuestAbi.BootInfo.Params)]
    [InlineData("mailbox", GuestAbi.BootInfo.Mailbox)]
    [InlineData("region_count", GuestAbi.BootInfo.RegionCount)]
    [InlineData("content_lz4_permille", GuestAbi.BootInfo.ContentLz4Permille)]
    [InlineData("regions", GuestAbi.BootInfo.Regions)]
    public void GuestBootInfoOffsetsMatchC(string cField, int offset)
    {
        Assert.Equal(Native.LayoutOffsetof("kp_boot_info", cField), offset);
    }

    [Theory]
    [InlineData("pace_deadline_us", GuestAbi.Mail.PaceDeadlineUs)]
    [InlineData("hb_seq", GuestAbi.Mail.HbSeq)]
    [InlineData("hb_prev", GuestAbi.Mail.HbPrev)]
    [InlineData("hb_sum", GuestAbi.Mail.HbSum)]
    [InlineData("hb_errors", GuestAbi.Mail.HbErrors)]
    [InlineData("progress_total", GuestAbi.Mail.ProgressTotal)]
    [InlineData("sched_due_us", GuestAbi.Mail.SchedDueUs)]
    [InlineData("sched_lost_us", GuestAbi.Mail.SchedLostUs)]
    public void GuestMailboxOffsetsMatchC(string cField, int offset)
    {
        Assert.Equal(Native.LayoutOffsetof("kp_mailbox", cField), offset);
    }

    [Theory]
    [InlineData("seq", GuestAbi.ReplayBatch.Seq)]
    [InlineData("interval", GuestAbi.ReplayBatch.Interval)]
    [InlineData("due_us", GuestAbi.ReplayBatch.DueUs)]
    [InlineData("pages", GuestAbi.ReplayBatch.Pages)]
    [InlineData("run_count", GuestAbi.ReplayBatch.RunCount)]
    [InlineData("flags", GuestAbi.ReplayBatch.Flags)]
    [InlineData("progress", GuestAbi.ReplayBatch.Progress)]
    [InlineData("reserved", GuestAbi.ReplayBatch.Reserved)]
    [InlineData("runs", GuestAbi.ReplayBatch.Runs)]
    public void GuestReplayBatchOffsetsMatchC(string cField, int offset)
    {
        Assert.Equal(Native.LayoutOffsetof("kp_replay_batch", cField), offset);
    }

    [Theory]
    [InlineData("first", GuestAbi.ReplayRun.First)]
    [InlineData("count", GuestAbi.ReplayRun.Count)]
    public void GuestReplayRunOffsetsMatchC(string cField, int offset)
    {
        Assert.Equal(Native.LayoutOffsetof("kp_replay_run", cField), offset);
    }

    [Theory]
    [InlineData("gpa", GuestAbi.RamRegion.Gpa)]
    [InlineData("size", GuestAbi.RamRegion.SizeBytes)]
    [InlineData("first_pfn", GuestAbi.RamRegion.FirstPfn)]
    public void GuestRamRegionOffsetsMatchC(string cField, int offset)
    {
        Assert.Equal(Native.LayoutOffsetof("kp_ram_region", cField), offset);
    }

    [Fact]
    public void GuestAbiSizesMatchC()
    {
        Assert.Equal(GuestAbi.BootInfo.Size, Native.LayoutSizeof("kp_boot_info"));
        Assert.Equal(GuestAbi.RamRegion.Size, Native.LayoutSizeof("kp_ram_region"));
        Assert.True(GuestAbi.BootInfo.Size <= 4096, "the boot info must fit its page");
        Assert.Equal(GuestAbi.Mail.Size, Native.LayoutSizeof("kp_mailbox"));
        Assert.Equal(GuestAbi.ReplayBatch.Size, Native.LayoutSizeof("kp_replay_batch"));
        Assert.Equal(GuestAbi.ReplayRun.Size, Native.LayoutSizeof("kp_replay_run"));
    }

    [Fact]
    public void BlobStructsHaveKnownSizes()
    {
        // The blobs are sized from C at run time; a negative answer means the shim lacks the name.
        foreach (string t in new[] { "kvm_fpu", "kvm_xsave", "kvm_xcrs", "kvm_lapic_state", "kvm_vcpu_events", "kvm_debugregs", "kvm_irqchip", "kvm_pit_state2", "kvm_clock_data" })
            Assert.True(Native.LayoutSizeof(t) > 0, $"shim does not report sizeof(struct {t})");
        Assert.Equal(-1, Native.LayoutSizeof("no_such_struct"));
        Assert.Equal(-1, Native.LayoutOffsetof("kvm_regs", "no_such_field"));
    }

    private static void AssertOffset<T>(string cType, string cField, string field) where T : struct
    {
        long c = Native.LayoutOffsetof(cType, cField);
        Assert.True(c >= 0, $"shim does not know {cType}.{cField}");
        Assert.Equal(c, (long)Marshal.OffsetOf<T>(field));
    }
}
