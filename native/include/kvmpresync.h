/*
 * kvmpresync.h — the one header the C# engine binds to (src/KvmPresync/Interop/).
 *
 * The shim is thin and 1:1 with <linux/kvm.h>: one function per ioctl or syscall, fixed-width
 * types only, no state of its own. Conventions:
 *   - every function returns >= 0 on success (a file descriptor, a count or 0) and -errno on failure;
 *   - EINTR is retried here, except for kp_vcpu_run, where EINTR is how a kicked vCPU returns;
 *   - kernel structs are passed as pointers to buffers whose size the caller takes from
 *     kp_layout_sizeof("kvm_...") — C# mirrors the ones it reads field by field (kvm_regs,
 *     kvm_sregs, kvm_run's head) and a test proves those layouts with kp_layout_offsetof.
 */
#ifndef KVMPRESYNC_H
#define KVMPRESYNC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KP_EXPORT __attribute__((visibility("default")))

/* ---- system (/dev/kvm) ---- */
KP_EXPORT int32_t kp_kvm_open(const char *path);                 /* fd */
KP_EXPORT int32_t kp_close(int32_t fd);
KP_EXPORT int32_t kp_kvm_get_api_version(int32_t kvm_fd);
KP_EXPORT int32_t kp_check_extension(int32_t fd, uint32_t cap);  /* capability value, 0 = absent */
KP_EXPORT int32_t kp_kvm_get_vcpu_mmap_size(int32_t kvm_fd);
/* Fills up to `capacity` MSR indices; returns the count, or -E2BIG if capacity is too small. */
KP_EXPORT int32_t kp_kvm_get_msr_index_list(int32_t kvm_fd, uint32_t *indices, uint32_t capacity);
/* Fills up to `capacity` struct kvm_cpuid_entry2; returns the count. */
KP_EXPORT int32_t kp_kvm_get_supported_cpuid(int32_t kvm_fd, void *entries, uint32_t capacity);

/* ---- VM ---- */
KP_EXPORT int32_t kp_vm_create(int32_t kvm_fd);                  /* fd */
KP_EXPORT int32_t kp_vm_enable_cap(int32_t vm_fd, uint32_t cap, uint64_t arg0);
KP_EXPORT int32_t kp_vm_set_tss_addr(int32_t vm_fd, uint64_t addr);
KP_EXPORT int32_t kp_vm_set_identity_map_addr(int32_t vm_fd, uint64_t addr);
KP_EXPORT int32_t kp_vm_create_irqchip(int32_t vm_fd);
KP_EXPORT int32_t kp_vm_create_pit2(int32_t vm_fd, uint32_t flags);
KP_EXPORT int32_t kp_vm_set_user_memory_region(int32_t vm_fd, uint32_t slot, uint32_t flags,
                                               uint64_t guest_phys_addr, uint64_t memory_size,
                                               uint64_t userspace_addr);
/* Bitmap: one bit per page of the slot, 64-bit words, (pages + 63) / 64 words. */
KP_EXPORT int32_t kp_vm_get_dirty_log(int32_t vm_fd, uint32_t slot, uint64_t *bitmap);
/* first_page and num_pages multiples of 64 (num_pages may end at the slot's end). */
KP_EXPORT int32_t kp_vm_clear_dirty_log(int32_t vm_fd, uint32_t slot, uint64_t first_page,
                                        uint32_t num_pages, uint64_t *bitmap);
KP_EXPORT int32_t kp_vm_get_irqchip(int32_t vm_fd, void *kvm_irqchip);   /* chip_id set by caller */
KP_EXPORT int32_t kp_vm_set_irqchip(int32_t vm_fd, const void *kvm_irqchip);
KP_EXPORT int32_t kp_vm_get_pit2(int32_t vm_fd, void *kvm_pit_state2);
KP_EXPORT int32_t kp_vm_set_pit2(int32_t vm_fd, const void *kvm_pit_state2);
KP_EXPORT int32_t kp_vm_get_clock(int32_t vm_fd, void *kvm_clock_data);
KP_EXPORT int32_t kp_vm_set_clock(int32_t vm_fd, const void *kvm_clock_data);

/* ---- vCPU ---- */
KP_EXPORT int32_t kp_vcpu_create(int32_t vm_fd, uint32_t vcpu_id);     /* fd */
/* Maps struct kvm_run; returns NULL and sets *err = -errno on failure. */
KP_EXPORT void *kp_vcpu_map_run(int32_t vcpu_fd, uint64_t size, int32_t *err);
KP_EXPORT int32_t kp_vcpu_run(int32_t vcpu_fd);                         /* -EINTR when kicked */
KP_EXPORT int32_t kp_vcpu_set_cpuid2(int32_t vcpu_fd, const void *entries, uint32_t count);
KP_EXPORT int32_t kp_vcpu_get_regs(int32_t vcpu_fd, void *kvm_regs);
KP_EXPORT int32_t kp_vcpu_set_regs(int32_t vcpu_fd, const void *kvm_regs);
KP_EXPORT int32_t kp_vcpu_get_sregs(int32_t vcpu_fd, void *kvm_sregs);
KP_EXPORT int32_t kp_vcpu_set_sregs(int32_t vcpu_fd, const void *kvm_sregs);
KP_EXPORT int32_t kp_vcpu_get_fpu(int32_t vcpu_fd, void *kvm_fpu);
KP_EXPORT int32_t kp_vcpu_set_fpu(int32_t vcpu_fd, const void *kvm_fpu);
KP_EXPORT int32_t kp_vcpu_get_xsave(int32_t vcpu_fd, void *kvm_xsave);
KP_EXPORT int32_t kp_vcpu_set_xsave(int32_t vcpu_fd, const void *kvm_xsave);
KP_EXPORT int32_t kp_vcpu_get_xcrs(int32_t vcpu_fd, void *kvm_xcrs);
KP_EXPORT int32_t kp_vcpu_set_xcrs(int32_t vcpu_fd, const void *kvm_xcrs);
/* entries: struct kvm_msr_entry[count] with index set; returns how many were read/written. */
KP_EXPORT int32_t kp_vcpu_get_msrs(int32_t vcpu_fd, void *entries, uint32_t count);
KP_EXPORT int32_t kp_vcpu_set_msrs(int32_t vcpu_fd, const void *entries, uint32_t count);
KP_EXPORT int32_t kp_vcpu_get_lapic(int32_t vcpu_fd, void *kvm_lapic_state);
KP_EXPORT int32_t kp_vcpu_set_lapic(int32_t vcpu_fd, const void *kvm_lapic_state);
KP_EXPORT int32_t kp_vcpu_get_vcpu_events(int32_t vcpu_fd, void *kvm_vcpu_events);
KP_EXPORT int32_t kp_vcpu_set_vcpu_events(int32_t vcpu_fd, const void *kvm_vcpu_events);
KP_EXPORT int32_t kp_vcpu_get_mp_state(int32_t vcpu_fd, uint32_t *mp_state);
KP_EXPORT int32_t kp_vcpu_set_mp_state(int32_t vcpu_fd, uint32_t mp_state);
KP_EXPORT int32_t kp_vcpu_get_debugregs(int32_t vcpu_fd, void *kvm_debugregs);
KP_EXPORT int32_t kp_vcpu_set_debugregs(int32_t vcpu_fd, const void *kvm_debugregs);

/* ---- vCPU kick: make a thread blocked in KVM_RUN return with -EINTR ---- */
/* Installs a no-op SIGUSR2 handler (idempotent). Call once before any kick. */
KP_EXPORT int32_t kp_kick_init(void);
KP_EXPORT uint64_t kp_thread_self(void);
KP_EXPORT int32_t kp_thread_kick(uint64_t thread);

/* ---- guest memory: memfd + shared mapping ---- */
KP_EXPORT int32_t kp_memfd_create(const char *name, uint64_t size);     /* fd, sized */
#define KP_MAP_HUGEPAGE 1u   /* madvise(MADV_HUGEPAGE) */
#define KP_MAP_POPULATE 2u   /* MAP_POPULATE */
/* Maps fd shared read-write; returns NULL and sets *err = -errno on failure. */
KP_EXPORT void *kp_mmap_shared(int32_t fd, uint64_t size, uint32_t flags, int32_t *err);
KP_EXPORT int32_t kp_munmap(void *addr, uint64_t size);

/* ---- layout proof: sizes and offsets of the kernel structs C# mirrors or sizes ---- */
/* Returns -1 for an unknown name. */
KP_EXPORT int64_t kp_layout_sizeof(const char *type);
KP_EXPORT int64_t kp_layout_offsetof(const char *type, const char *field);

/* ---- sockets: gather send from guest memory, MSG_ZEROCOPY and its completions (shim/net.c) ---- */
/* One buffer of a gather send. Same size and field offsets as struct iovec on LP64 (a static assert in
 * net.c holds it); C# mirrors it field by field and a test proves the layout with kp_layout_*. */
struct kp_iovec {
    uint64_t base;   /* address of the first byte */
    uint64_t len;    /* bytes */
};
#define KP_IOV_MAX 1024u          /* most iovecs one kp_sock_sendmsg accepts (Linux UIO_MAXIOV) */
#define KP_SEND_ZEROCOPY 1u       /* MSG_ZEROCOPY: the kernel pins the pages; completion comes via the error queue */
#define KP_SEND_MORE 2u           /* MSG_MORE: more data follows, do not push a short segment yet */
#define KP_SEND_DONTWAIT 4u       /* MSG_DONTWAIT: return -EAGAIN instead of blocking when the buffer is full */
/* Sets SO_ZEROCOPY on a TCP socket; -ENOPROTOOPT / -EOPNOTSUPP when the kernel or socket cannot. */
KP_EXPORT int32_t kp_sock_enable_zerocopy(int32_t fd);
/* sendmsg(fd, iov[0..iovcnt), MSG_NOSIGNAL | flags): bytes sent (may be fewer than offered), or -errno
 * (-EAGAIN when DONTWAIT and full, -ENOBUFS when zero-copy notifications or pinned pages are over their
 * limits: reap completions and retry). EINTR is retried. */
KP_EXPORT int64_t kp_sock_sendmsg(int32_t fd, const struct kp_iovec *iov, uint32_t iovcnt, uint32_t flags);
/* Zero-copy completions, accumulated by kp_sock_reap_zerocopy (the caller zeroes it once). */
struct kp_zc_stats {
    uint64_t completed_lo_hi_ranges; /* notifications read (each one covers a range [lo, hi] of sends) */
    uint64_t completed_sends;        /* sends completed: the sum of (hi - lo + 1) */
    uint64_t copied_sends;           /* of those, in notifications flagged SO_EE_CODE_ZEROCOPY_COPIED */
    uint32_t last_hi;                /* hi of the last notification read */
};
/* Drains the socket error queue without blocking (MSG_ERRQUEUE | MSG_DONTWAIT) and accumulates every
 * SO_EE_ORIGIN_ZEROCOPY notification into *out. Other error-queue entries are consumed and ignored.
 * Returns the number of zero-copy notifications read (0 when none), or -errno. */
KP_EXPORT int32_t kp_sock_reap_zerocopy(int32_t fd, struct kp_zc_stats *out);
#define KP_POLL_IN 0x001u
#define KP_POLL_OUT 0x004u
#define KP_POLL_ERR 0x008u        /* reported without being asked: an error or a queued zero-copy completion */
#define KP_POLL_HUP 0x010u
/* poll(2) on one fd: the revents (0 on timeout), or -errno. EINTR is retried with the full timeout. */
KP_EXPORT int32_t kp_sock_poll(int32_t fd, uint32_t events, int32_t timeout_ms);

/* ---- process memory: userfaultfd async write protection + PAGEMAP_SCAN (shim/pagemap.c, Linux >= 6.7) ---- */
/* One run of written pages as PAGEMAP_SCAN returns it (the kernel's struct page_region; pagemap.c asserts the
 * layout, kp_layout_* reports it to C#). */
struct kp_page_region {
    uint64_t start;       /* first byte of the run */
    uint64_t end;         /* one past its last byte */
    uint64_t categories;  /* PAGE_IS_WRITTEN (2) */
};
#define KP_UFFD_ARM 1u    /* kp_uffd_register_wp: also write-protect now (pages written before count as clean) */
/* open("/proc/PID/pagemap") (pid <= 0: /proc/self/pagemap): fd, or -errno. */
KP_EXPORT int32_t kp_pagemap_open(int32_t pid);
/* PAGEMAP_SCAN over [start, end) with PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, category and return mask
 * PAGE_IS_WRITTEN: fills up to vec_len runs of pages written since the previous scan and write-protects exactly
 * those pages again in the same call. Returns the runs filled; *walk_end = where the walk stopped (< end when vec
 * was full: scan again from there). -EPERM: part of the range is not registered with an async-WP userfaultfd;
 * -EINVAL / -ENOTTY: no PAGEMAP_SCAN (Linux < 6.7). EINTR is retried. */
KP_EXPORT int64_t kp_pagemap_scan_written(int32_t pagemap_fd, uint64_t start, uint64_t end, struct kp_page_region *vec,
                                          uint64_t vec_len, uint64_t *walk_end);
/* The same over a whole address space: without PM_SCAN_CHECK_WPASYNC, so VMAs not registered for async write
 * protection are skipped instead of failing the call (a process tree's capture scans [0, TASK_SIZE) of each
 * process). Runs also carry PAGE_IS_FILE (4), PAGE_IS_PRESENT (8), PAGE_IS_SWAPPED (16) and PAGE_IS_PFNZERO (32):
 * a "written" page neither present nor swapped is an empty PTE of a range registered without arming, and in a
 * private mapping a file or zero page was mapped by a read — the scan re-arms them, but they are not writes. */
KP_EXPORT int64_t kp_pagemap_scan_written_registered(int32_t pagemap_fd, uint64_t start, uint64_t end,
                                                     struct kp_page_region *vec, uint64_t vec_len, uint64_t *walk_end);
/* Opens a userfaultfd in this process with UFFD_FEATURE_WP_ASYNC and whichever of want_features exists (falls
 * back to UFFD_USER_MODE_ONLY on EPERM); *features = negotiated (bit 63: user-mode only). fd, or -errno
 * (-EOPNOTSUPP: no WP_ASYNC). Keep it open: closing it drops every registration. */
KP_EXPORT int64_t kp_uffd_open(uint64_t want_features, uint64_t *features);
/* UFFDIO_REGISTER_MODE_WP over [start, start+len) (page aligned); with KP_UFFD_ARM also UFFDIO_WRITEPROTECT. */
KP_EXPORT int32_t kp_uffd_register_wp(int32_t uffd, uint64_t start, uint64_t len, uint32_t flags);

#ifdef __cplusplus
}
#endif
#endif
