/* VM file descriptor: creation, capabilities, memory slots, dirty log, in-kernel devices, clock. */
#include <string.h>
#include <linux/kvm.h>
#include "common.h"
#include "kvmpresync.h"

int32_t kp_vm_create(int32_t kvm_fd)
{
    return kp_ioctl_val(kvm_fd, KVM_CREATE_VM, 0);
}

int32_t kp_vm_enable_cap(int32_t vm_fd, uint32_t cap, uint64_t arg0)
{
    struct kvm_enable_cap ec;
    memset(&ec, 0, sizeof(ec));
    ec.cap = cap;
    ec.args[0] = arg0;
    return kp_ioctl(vm_fd, KVM_ENABLE_CAP, &ec);
}

int32_t kp_vm_set_tss_addr(int32_t vm_fd, uint64_t addr)
{
    return kp_ioctl_val(vm_fd, KVM_SET_TSS_ADDR, (unsigned long)addr);
}

int32_t kp_vm_set_identity_map_addr(int32_t vm_fd, uint64_t addr)
{
    uint64_t a = addr;
    return kp_ioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &a);
}

int32_t kp_vm_create_irqchip(int32_t vm_fd)
{
    return kp_ioctl_val(vm_fd, KVM_CREATE_IRQCHIP, 0);
}

int32_t kp_vm_create_pit2(int32_t vm_fd, uint32_t flags)
{
    struct kvm_pit_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.flags = flags;
    return kp_ioctl(vm_fd, KVM_CREATE_PIT2, &cfg);
}

int32_t kp_vm_set_user_memory_region(int32_t vm_fd, uint32_t slot, uint32_t flags,
                                     uint64_t guest_phys_addr, uint64_t memory_size,
                                     uint64_t userspace_addr)
{
    struct kvm_userspace_memory_region r = {
        .slot = slot,
        .flags = flags,
        .guest_phys_addr = guest_phys_addr,
        .memory_size = memory_size,
        .userspace_addr = userspace_addr,
    };
    return kp_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

int32_t kp_vm_get_dirty_log(int32_t vm_fd, uint32_t slot, uint64_t *bitmap)
{
    struct kvm_dirty_log log;
    memset(&log, 0, sizeof(log));
    log.slot = slot;
    log.dirty_bitmap = bitmap;
    return kp_ioctl(vm_fd, KVM_GET_DIRTY_LOG, &log);
}

int32_t kp_vm_clear_dirty_log(int32_t vm_fd, uint32_t slot, uint64_t first_page,
                              uint32_t num_pages, uint64_t *bitmap)
{
    struct kvm_clear_dirty_log log;
    memset(&log, 0, sizeof(log));
    log.slot = slot;
    log.first_page = first_page;
    log.num_pages = num_pages;
    log.dirty_bitmap = bitmap;
    return kp_ioctl(vm_fd, KVM_CLEAR_DIRTY_LOG, &log);
}

int32_t kp_vm_get_irqchip(int32_t vm_fd, void *kvm_irqchip)
{
    return kp_ioctl(vm_fd, KVM_GET_IRQCHIP, kvm_irqchip);
}

int32_t kp_vm_set_irqchip(int32_t vm_fd, const void *kvm_irqchip)
{
    return kp_ioctl(vm_fd, KVM_SET_IRQCHIP, (void *)kvm_irqchip);
}

int32_t kp_vm_get_pit2(int32_t vm_fd, void *kvm_pit_state2)
{
    return kp_ioctl(vm_fd, KVM_GET_PIT2, kvm_pit_state2);
}

int32_t kp_vm_set_pit2(int32_t vm_fd, const void *kvm_pit_state2)
{
    return kp_ioctl(vm_fd, KVM_SET_PIT2, (void *)kvm_pit_state2);
}

int32_t kp_vm_get_clock(int32_t vm_fd, void *kvm_clock_data)
{
    return kp_ioctl(vm_fd, KVM_GET_CLOCK, kvm_clock_data);
}

int32_t kp_vm_set_clock(int32_t vm_fd, const void *kvm_clock_data)
{
    return kp_ioctl(vm_fd, KVM_SET_CLOCK, (void *)kvm_clock_data);
}
