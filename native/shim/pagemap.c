/* Exact write tracking of a process's memory from outside: userfaultfd write protection in async mode
 * (UFFD_FEATURE_WP_ASYNC: a write to a protected page just clears the protection, nobody handles a fault)
 * and PAGEMAP_SCAN on /proc/PID/pagemap, which reports the written pages and write-protects them again in
 * the same call. Debian 12's headers predate both (Linux 6.7), so the kernel ABI is defined here; the
 * static asserts and kp_layout_* (layout.c) hold it to the kernel's layout. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>
#include "common.h"
#include "kvmpresync.h"
#include "pagemap_abi.h"

_Static_assert(sizeof(struct kp_page_region) == sizeof(struct kp_kernel_page_region), "kp_page_region mirrors page_region");
_Static_assert(offsetof(struct kp_page_region, start) == offsetof(struct kp_kernel_page_region, start), "start");
_Static_assert(offsetof(struct kp_page_region, end) == offsetof(struct kp_kernel_page_region, end), "end");
_Static_assert(offsetof(struct kp_page_region, categories) == offsetof(struct kp_kernel_page_region, categories), "categories");

int32_t kp_pagemap_open(int32_t pid)
{
    char path[64];
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
    else
        snprintf(path, sizeof(path), "/proc/self/pagemap");
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

static int64_t scan_written(int32_t pagemap_fd, uint64_t flags, uint64_t return_mask, uint64_t start, uint64_t end, struct kp_page_region *vec,
                            uint64_t vec_len, uint64_t *walk_end)
{
    struct kp_pm_scan_arg arg = {
        .size = sizeof(arg),
        .flags = flags,
        .start = start,
        .end = end,
        .vec = (uint64_t)(uintptr_t)vec,
        .vec_len = vec_len,
        .category_mask = KP_PAGE_IS_WRITTEN,
        .return_mask = return_mask,
    };
    int ret;
    do {
        ret = ioctl(pagemap_fd, KP_PAGEMAP_SCAN, &arg);
    } while (ret < 0 && errno == EINTR);
    if (ret < 0)
        return -errno;
    if (walk_end)
        *walk_end = arg.walk_end;
    return ret;
}

int64_t kp_pagemap_scan_written(int32_t pagemap_fd, uint64_t start, uint64_t end, struct kp_page_region *vec,
                                uint64_t vec_len, uint64_t *walk_end)
{
    return scan_written(pagemap_fd, KP_PM_SCAN_WP_MATCHING | KP_PM_SCAN_CHECK_WPASYNC, KP_PAGE_IS_WRITTEN, start, end, vec, vec_len, walk_end);
}

int64_t kp_pagemap_scan_written_registered(int32_t pagemap_fd, uint64_t start, uint64_t end, struct kp_page_region *vec,
                                           uint64_t vec_len, uint64_t *walk_end)
{
    return scan_written(pagemap_fd, KP_PM_SCAN_WP_MATCHING, KP_PAGE_IS_WRITTEN | KP_PAGE_IS_FILE | KP_PAGE_IS_PRESENT | KP_PAGE_IS_SWAPPED | KP_PAGE_IS_PFNZERO, start, end, vec, vec_len, walk_end);
}

int64_t kp_uffd_open(uint64_t want_features, uint64_t *features)
{
    return kp_uffd_open_impl(want_features, features);
}

int32_t kp_uffd_register_wp(int32_t uffd, uint64_t start, uint64_t len, uint32_t flags)
{
    return kp_uffd_register_wp_impl(uffd, start, len, flags);
}
