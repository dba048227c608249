/* Guest memory: an anonymous memfd sized with ftruncate, mapped MAP_SHARED (so a second mapping or
 * a future snapshot sees the same pages), optionally backed by transparent huge pages. */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>
#include "common.h"
#include "kvmpresync.h"

int32_t kp_memfd_create(const char *name, uint64_t size)
{
    int fd = memfd_create(name ? name : "kvmpresync-guest", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int ret;
    do {
        ret = ftruncate(fd, (off_t)size);
    } while (ret < 0 && errno == EINTR);
    if (ret < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

void *kp_mmap_shared(int32_t fd, uint64_t size, uint32_t flags, int32_t *err)
{
    int mflags = MAP_SHARED;
    if (flags & KP_MAP_POPULATE)
        mflags |= MAP_POPULATE;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, mflags, fd, 0);
    if (p == MAP_FAILED) {
        *err = -errno;
        return NULL;
    }
    if (flags & KP_MAP_HUGEPAGE)
        (void)madvise(p, size, MADV_HUGEPAGE); /* advisory: shmem THP may be disabled */
    *err = 0;
    return p;
}

int32_t kp_munmap(void *addr, uint64_t size)
{
    return munmap(addr, size) < 0 ? -errno : 0;
}
