/* /dev/kvm: open, API version, capabilities, MSR and CPUID lists. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/kvm.h>
#include "common.h"
#include "kvmpresync.h"

int32_t kp_kvm_open(const char *path)
{
    int fd;
    do {
        fd = open(path ? path : "/dev/kvm", O_RDWR | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

int32_t kp_close(int32_t fd)
{
    /* close is not retried on EINTR: on Linux the descriptor is released either way. */
    return close(fd) < 0 ? -errno : 0;
}

int32_t kp_kvm_get_api_version(int32_t kvm_fd)
{
    return kp_ioctl_val(kvm_fd, KVM_GET_API_VERSION, 0);
}

int32_t kp_check_extension(int32_t fd, uint32_t cap)
{
    return kp_ioctl_val(fd, KVM_CHECK_EXTENSION, cap);
}

int32_t kp_kvm_get_vcpu_mmap_size(int32_t kvm_fd)
{
    return kp_ioctl_val(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
}

int32_t kp_kvm_get_msr_index_list(int32_t kvm_fd, uint32_t *indices, uint32_t capacity)
{
    struct kvm_msr_list *list = malloc(sizeof(*list) + (size_t)capacity * sizeof(uint32_t));
    if (!list)
        return -ENOMEM;
    list->nmsrs = capacity;
    int32_t ret = kp_ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list);
    if (ret == 0) {
        memcpy(indices, list->indices, (size_t)list->nmsrs * sizeof(uint32_t));
        ret = (int32_t)list->nmsrs;
    }
    free(list);
    return ret;
}

int32_t kp_kvm_get_supported_cpuid(int32_t kvm_fd, void *entries, uint32_t capacity)
{
    size_t bytes = sizeof(struct kvm_cpuid2) + (size_t)capacity * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = calloc(1, bytes);
    if (!cpuid)
        return -ENOMEM;
    cpuid->nent = capacity;
    int32_t ret = kp_ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid);
    if (ret == 0) {
        memcpy(entries, cpuid->entries, (size_t)cpuid->nent * sizeof(struct kvm_cpuid_entry2));
        ret = (int32_t)cpuid->nent;
    }
    free(cpuid);
    return ret;
}
