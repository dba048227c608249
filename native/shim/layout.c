/* Sizes and offsets of the kernel (and libvirt) structs the C# side mirrors (field by field) or sizes (as blobs).
 * A C# test compares every mirrored field against these, so a layout drift fails a test, not a guest. */
#include <stddef.h>
#include <string.h>
#include <linux/kvm.h>
#include "kvmpresync.h"
#include "kvmpresync_guest.h"
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

struct kp_field {
    const char *type;
    const char *field;
    int64_t value;
};

#define SIZE(t) { #t, NULL, (int64_t)sizeof(struct t) }
#define OFF(t, f) { #t, #f, (int64_t)offsetof(struct t, f) }

static const struct kp_field kp_layout[] = {
    SIZE(kvm_regs), OFF(kvm_regs, rax), OFF(kvm_regs, rbx), OFF(kvm_regs, rcx), OFF(kvm_regs, rdx),
    OFF(kvm_regs, rsi), OFF(kvm_regs, rdi), OFF(kvm_regs, rsp), OFF(kvm_regs, rbp),
    OFF(kvm_regs, r8), OFF(kvm_regs, r15), OFF(kvm_regs, rip), OFF(kvm_regs, rflags),

    SIZE(kvm_segment), OFF(kvm_segment, base), OFF(kvm_segment, limit), OFF(kvm_segment, selector),
    OFF(kvm_segment, type), OFF(kvm_segment, present), OFF(kvm_segment, dpl), OFF(kvm_segment, db),
    OFF(kvm_segment, s), OFF(kvm_segment, l), OFF(kvm_segment, g), OFF(kvm_segment, avl),
    OFF(kvm_segment, unusable),

    SIZE(kvm_dtable), OFF(kvm_dtable, base), OFF(kvm_dtable, limit),

    SIZE(kvm_sregs), OFF(kvm_sregs, cs), OFF(kvm_sregs, ds), OFF(kvm_sregs, es), OFF(kvm_sregs, fs),
    OFF(kvm_sregs, gs), OFF(kvm_sregs, ss), OFF(kvm_sregs, tr), OFF(kvm_sregs, ldt),
    OFF(kvm_sregs, gdt), OFF(kvm_sregs, idt), OFF(kvm_sregs, cr0), OFF(kvm_sregs, cr2),
    OFF(kvm_sregs, cr3), OFF(kvm_sregs, cr4), OFF(kvm_sregs, cr8), OFF(kvm_sregs, efer),
    OFF(kvm_sregs, apic_base), OFF(kvm_sregs, interrupt_bitmap),

    SIZE(kvm_run), OFF(kvm_run, request_interrupt_window), OFF(kvm_run, immediate_exit),
    OFF(kvm_run, exit_reason), OFF(kvm_run, io), OFF(kvm_run, io.direction), OFF(kvm_run, io.size),
    OFF(kvm_run, io.port), OFF(kvm_run, io.count), OFF(kvm_run, io.data_offset),
    OFF(kvm_run, mmio.phys_addr), OFF(kvm_run, fail_entry.hardware_entry_failure_reason),
    OFF(kvm_run, internal.suberror),

    SIZE(kvm_msr_entry), OFF(kvm_msr_entry, index), OFF(kvm_msr_entry, data),
    SIZE(kvm_cpuid_entry2), OFF(kvm_cpuid_entry2, function), OFF(kvm_cpuid_entry2, index),
    OFF(kvm_cpuid_entry2, eax), OFF(kvm_cpuid_entry2, edx),

    /* carried as opaque blobs: only their sizes matter to C# */
    SIZE(kvm_fpu), OFF(kvm_fpu, fpr), OFF(kvm_fpu, fcw), OFF(kvm_fpu, fsw), OFF(kvm_fpu, ftwx), /* filled from XSAVE */
    OFF(kvm_fpu, last_opcode), OFF(kvm_fpu, last_ip), OFF(kvm_fpu, last_dp), OFF(kvm_fpu, xmm),
    SIZE(kvm_xsave), SIZE(kvm_xcrs), SIZE(kvm_lapic_state), SIZE(kvm_vcpu_events),
    SIZE(kvm_debugregs), SIZE(kvm_irqchip), OFF(kvm_irqchip, chip_id), SIZE(kvm_pit_state2),
    SIZE(kvm_clock_data), OFF(kvm_clock_data, clock), OFF(kvm_clock_data, flags),

    /* the guest ABI (kvmpresync_guest.h), mirrored by src/KvmPresync.Vmm/GuestAbi.cs */
    SIZE(kp_boot_info), OFF(kp_boot_info, magic), OFF(kp_boot_info, version), OFF(kp_boot_info, workload),
    OFF(kp_boot_info, flags), OFF(kp_boot_info, memory_size), OFF(kp_boot_info, seed),
    OFF(kp_boot_info, heap_start), OFF(kp_boot_info, fill_bytes), OFF(kp_boot_info, zero_permille),
    OFF(kp_boot_info, heartbeat_ms), OFF(kp_boot_info, params), OFF(kp_boot_info, mailbox),
    OFF(kp_boot_info, region_count), OFF(kp_boot_info, content_lz4_permille), OFF(kp_boot_info, regions),
    SIZE(kp_ram_region), OFF(kp_ram_region, gpa), OFF(kp_ram_region, size), OFF(kp_ram_region, first_pfn),
    SIZE(kp_mailbox), OFF(kp_mailbox, pace_deadline_us), OFF(kp_mailbox, hb_seq), OFF(kp_mailbox, hb_prev),
    OFF(kp_mailbox, hb_sum), OFF(kp_mailbox, hb_errors), OFF(kp_mailbox, progress_total),
    OFF(kp_mailbox, sched_due_us), OFF(kp_mailbox, sched_lost_us),
    SIZE(kp_replay_batch), OFF(kp_replay_batch, seq), OFF(kp_replay_batch, interval), OFF(kp_replay_batch, due_us),
    OFF(kp_replay_batch, pages), OFF(kp_replay_batch, run_count), OFF(kp_replay_batch, flags),
    OFF(kp_replay_batch, progress), OFF(kp_replay_batch, reserved), OFF(kp_replay_batch, runs),
    SIZE(kp_replay_run), OFF(kp_replay_run, first), OFF(kp_replay_run, count),

    /* the zero-copy send structs (net.c), mirrored by src/KvmPresync/Interop/Interop.Net.cs */
    SIZE(kp_iovec), OFF(kp_iovec, base), OFF(kp_iovec, len),
    SIZE(kp_zc_stats), OFF(kp_zc_stats, completed_lo_hi_ranges), OFF(kp_zc_stats, completed_sends),
    OFF(kp_zc_stats, copied_sends), OFF(kp_zc_stats, last_hi),

    /* PAGEMAP_SCAN's output (pagemap.c), mirrored by src/KvmPresync.Process/Interop/PageRegion.cs */
    SIZE(kp_page_region), OFF(kp_page_region, start), OFF(kp_page_region, end), OFF(kp_page_region, categories),
};

/* libvirt's public structs (libvirt-dev headers), mirrored by src/KvmPresync.Libvirt/Interop/. virError's conn, dom
 * and net are deprecated but still take space, so their offsets are checked too: hence the pragma. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static const struct kp_field kp_libvirt_layout[] = {
    SIZE(_virTypedParameter), OFF(_virTypedParameter, field), OFF(_virTypedParameter, type),
    OFF(_virTypedParameter, value), OFF(_virTypedParameter, value.i), OFF(_virTypedParameter, value.ui),
    OFF(_virTypedParameter, value.l), OFF(_virTypedParameter, value.ul), OFF(_virTypedParameter, value.d),
    OFF(_virTypedParameter, value.b), OFF(_virTypedParameter, value.s),
    { "_virTypedParameter", "sizeof(value)", (int64_t)sizeof(((struct _virTypedParameter *)0)->value) },
    SIZE(_virDomainInfo), OFF(_virDomainInfo, state), OFF(_virDomainInfo, maxMem), OFF(_virDomainInfo, memory),
    OFF(_virDomainInfo, nrVirtCpu), OFF(_virDomainInfo, cpuTime),
    SIZE(_virError), OFF(_virError, code), OFF(_virError, domain), OFF(_virError, message),
    OFF(_virError, level), OFF(_virError, str1), OFF(_virError, str2), OFF(_virError, str3),
    OFF(_virError, int1), OFF(_virError, int2),
    /* deprecated (still in the struct, so they still take space) */
    OFF(_virError, conn), OFF(_virError, dom), OFF(_virError, net),
};
#pragma GCC diagnostic pop

static const struct kp_field *kp_find_in(const struct kp_field *table, size_t n, const char *type, const char *field)
{
    for (size_t i = 0; i < n; i++) {
        const struct kp_field *f = &table[i];
        if (strcmp(f->type, type) != 0)
            continue;
        if ((field == NULL && f->field == NULL) ||
            (field != NULL && f->field != NULL && strcmp(f->field, field) == 0))
            return f;
    }
    return NULL;
}

static const struct kp_field *kp_find(const char *type, const char *field)
{
    const struct kp_field *f = kp_find_in(kp_layout, sizeof(kp_layout) / sizeof(kp_layout[0]), type, field);
    return f ? f : kp_find_in(kp_libvirt_layout, sizeof(kp_libvirt_layout) / sizeof(kp_libvirt_layout[0]), type, field);
}

int64_t kp_layout_sizeof(const char *type)
{
    const struct kp_field *f = kp_find(type, NULL);
    return f ? f->value : -1;
}

int64_t kp_layout_offsetof(const char *type, const char *field)
{
    const struct kp_field *f = field ? kp_find(type, field) : NULL;
    return f ? f->value : -1;
}
