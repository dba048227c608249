/* The kernel ABI of userfaultfd write protection (async) and PAGEMAP_SCAN (Linux 6.7), defined here because
 * older headers (Debian 12's) lack it; shared by the shim (shim/pagemap.c) and the preload library
 * (tracker/track.c), header-only so neither links the other. */
#ifndef KP_PAGEMAP_ABI_H
#define KP_PAGEMAP_ABI_H
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

/* <linux/fs.h> (6.7): PAGEMAP_SCAN */
struct kp_kernel_page_region {
    uint64_t start;
    uint64_t end;
    uint64_t categories;
};
struct kp_pm_scan_arg {
    uint64_t size;
    uint64_t flags;
    uint64_t start;
    uint64_t end;
    uint64_t walk_end;
    uint64_t vec;
    uint64_t vec_len;
    uint64_t max_pages;
    uint64_t category_inverted;
    uint64_t category_mask;
    uint64_t category_anyof_mask;
    uint64_t return_mask;
};
_Static_assert(sizeof(struct kp_kernel_page_region) == 24, "struct page_region is 24 bytes");
_Static_assert(sizeof(struct kp_pm_scan_arg) == 96, "struct pm_scan_arg is 96 bytes");
#define KP_PAGE_IS_WPALLOWED (1u << 0)
#define KP_PAGE_IS_WRITTEN (1u << 1)
#define KP_PAGE_IS_FILE (1u << 2)
#define KP_PAGE_IS_PRESENT (1u << 3)
#define KP_PAGE_IS_SWAPPED (1u << 4)
#define KP_PAGE_IS_PFNZERO (1u << 5)
#define KP_PM_SCAN_WP_MATCHING (1u << 0)
#define KP_PM_SCAN_CHECK_WPASYNC (1u << 1)
#define KP_PAGEMAP_SCAN _IOWR('f', 16, struct kp_pm_scan_arg)

/* <linux/userfaultfd.h> additions after Debian 12's 6.1 headers */
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#define KP_UFFD_FEATURES_WANTED \
    ((uint64_t)(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM))

#define KP_UFFD_FEATURE_USER_MODE_ONLY_BIT (1ull << 63) /* reported in *features: opened with UFFD_USER_MODE_ONLY */

static inline int kp_uffd_syscall(int flags)
{
    return (int)syscall(SYS_userfaultfd, flags);
}

/* Opens a userfaultfd (O_CLOEXEC | O_NONBLOCK); on EPERM (vm.unprivileged_userfaultfd = 0 and no
 * CAP_SYS_PTRACE) retries with UFFD_USER_MODE_ONLY — async WP faults never reach handle_userfault(), so
 * kernel-mode writes (read(2) into the memory, KVM through GUP) are tracked all the same. Negotiates
 * UFFD_FEATURE_WP_ASYNC (required) plus the optional bits of `want` the kernel has. Returns the fd
 * (with *features = what was negotiated) or -errno: -ENOSYS / -EINVAL / -EOPNOTSUPP when the kernel
 * lacks userfaultfd or WP_ASYNC (Linux < 6.7). */
static inline int64_t kp_uffd_open_impl(uint64_t want, uint64_t *features)
{
    int base = O_CLOEXEC | O_NONBLOCK;
    int probe = kp_uffd_syscall(base);
    int mode = base;
    if (probe < 0 && errno == EPERM) {
        mode = base | UFFD_USER_MODE_ONLY;
        probe = kp_uffd_syscall(mode);
    }
    if (probe < 0)
        return -errno;
    /* The first UFFDIO_API fixes a context's features: ask what exists on a throwaway fd. */
    struct uffdio_api api = { .api = UFFD_API, .features = 0 };
    int r = ioctl(probe, UFFDIO_API, &api);
    int e = errno;
    close(probe);
    if (r < 0)
        return -e;
    uint64_t have = api.features;
    if (!(have & UFFD_FEATURE_WP_ASYNC))
        return -EOPNOTSUPP;
    uint64_t ask = (want | UFFD_FEATURE_WP_ASYNC) & have;
    int fd = kp_uffd_syscall(mode);
    if (fd < 0)
        return -errno;
    api.api = UFFD_API;
    api.features = ask;
    api.ioctls = 0;
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        e = errno;
        close(fd);
        return -e;
    }
    if (features)
        *features = ask | ((mode & UFFD_USER_MODE_ONLY) ? KP_UFFD_FEATURE_USER_MODE_ONLY_BIT : 0);
    return fd;
}

#ifndef KP_UFFD_ARM
#define KP_UFFD_ARM 1u
#endif

/* UFFDIO_REGISTER [start, start+len) in write-protect mode; with KP_UFFD_ARM also write-protects it. Without
 * it, pages already present count as written at the first scan (the safe default: nothing written before
 * registration is missed). Registering a range again is harmless and leaves its pages' state alone. */
static inline int32_t kp_uffd_register_wp_impl(int uffd, uint64_t start, uint64_t len, uint32_t flags)
{
    struct uffdio_register reg = { .range = { .start = start, .len = len }, .mode = UFFDIO_REGISTER_MODE_WP };
    int r;
    do {
        r = ioctl(uffd, UFFDIO_REGISTER, &reg);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (flags & KP_UFFD_ARM) {
        struct uffdio_writeprotect wp = { .range = { .start = start, .len = len }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
        do {
            r = ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            return -errno;
    }
    return 0;
}
#endif
