/* vCPU file descriptor: creation, kvm_run mapping, KVM_RUN, every state get/set. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/kvm.h>
#include "common.h"
#include "kvmpresync.h"

int32_t kp_vcpu_create(int32_t vm_fd, uint32_t vcpu_id)
{
    return kp_ioctl_val(vm_fd, KVM_CREATE_VCPU, vcpu_id);
}

void *kp_vcpu_map_run(int32_t vcpu_fd, uint64_t size, int32_t *err)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
    if (p == MAP_FAILED) {
        *err = -errno;
        return NULL;
    }
    *err = 0;
    return p;
}

int32_t kp_vcpu_run(int32_t vcpu_fd)
{
    /* Not retried on EINTR: a kick (kp_thread_kick) returns the vCPU to its caller this way. */
    int ret = ioctl(vcpu_fd, KVM_RUN, 0);
    return ret < 0 ? -errno : ret;
}

int32_t kp_vcpu_set_cpuid2(int32_t vcpu_fd, const void *entries, uint32_t count)
{
    size_t bytes = sizeof(struct kvm_cpuid2) + (size_t)count * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = calloc(1, bytes);
    if (!cpuid)
        return -ENOMEM;
    cpuid->nent = count;
    memcpy(cpuid->entries, entries, (size_t)count * sizeof(struct kvm_cpuid_entry2));
    int32_t ret = kp_ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid);
    free(cpuid);
    return ret;
}

#define KP_GET_SET(name, get_req, set_req)                                 \
    int32_t kp_vcpu_get_##name(int32_t vcpu_fd, void *state)               \
    {                                                                      \
        return kp_ioctl(vcpu_fd, get_req, state);                          \
    }                                                                      \
    int32_t kp_vcpu_set_##name(int32_t vcpu_fd, const void *state)         \
    {                                                                      \
        return kp_ioctl(vcpu_fd, set_req, (void *)state);                  \
    }

KP_GET_SET(regs, KVM_GET_REGS, KVM_SET_REGS)
KP_GET_SET(sregs, KVM_GET_SREGS, KVM_SET_SREGS)
KP_GET_SET(fpu, KVM_GET_FPU, KVM_SET_FPU)
KP_GET_SET(xsave, KVM_GET_XSAVE, KVM_SET_XSAVE)
KP_GET_SET(xcrs, KVM_GET_XCRS, KVM_SET_XCRS)
KP_GET_SET(lapic, KVM_GET_LAPIC, KVM_SET_LAPIC)
KP_GET_SET(vcpu_events, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS)
KP_GET_SET(debugregs, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS)

static int32_t kp_msrs(int32_t vcpu_fd, unsigned long req, void *entries, uint32_t count)
{
    size_t bytes = sizeof(struct kvm_msrs) + (size_t)count * sizeof(struct kvm_msr_entry);
    struct kvm_msrs *msrs = calloc(1, bytes);
    if (!msrs)
        return -ENOMEM;
    msrs->nmsrs = count;
    memcpy(msrs->entries, entries, (size_t)count * sizeof(struct kvm_msr_entry));
    int32_t ret = kp_ioctl(vcpu_fd, req, msrs);
    if (ret >= 0)
        memcpy(entries, msrs->entries, (size_t)count * sizeof(struct kvm_msr_entry));
    free(msrs);
    return ret;
}

int32_t kp_vcpu_get_msrs(int32_t vcpu_fd, void *entries, uint32_t count)
{
    return kp_msrs(vcpu_fd, KVM_GET_MSRS, entries, count);
}

int32_t kp_vcpu_set_msrs(int32_t vcpu_fd, const void *entries, uint32_t count)
{
    return kp_msrs(vcpu_fd, KVM_SET_MSRS, (void *)entries, count);
}

int32_t kp_vcpu_get_mp_state(int32_t vcpu_fd, uint32_t *mp_state)
{
    struct kvm_mp_state s;
    int32_t ret = kp_ioctl(vcpu_fd, KVM_GET_MP_STATE, &s);
    if (ret == 0)
        *mp_state = s.mp_state;
    return ret;
}

int32_t kp_vcpu_set_mp_state(int32_t vcpu_fd, uint32_t mp_state)
{
    struct kvm_mp_state s = { .mp_state = mp_state };
    return kp_ioctl(vcpu_fd, KVM_SET_MP_STATE, &s);
}
