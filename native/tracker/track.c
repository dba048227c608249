/* libkvmpresync-track.so — loaded with LD_PRELOAD into a process whose memory KvmPresync tracks from outside
 * (QEMU's guest RAM, or any program). It opens a userfaultfd with UFFD_FEATURE_WP_ASYNC (plus WP_UNPOPULATED and
 * WP_HUGETLBFS_SHMEM where the kernel has them; on EPERM with UFFD_USER_MODE_ONLY) and registers mappings in
 * write-protect mode. Nothing in this process handles faults: in async mode a write to a protected page just
 * drops the protection, and the tracker (kp_pagemap_scan_written on /proc/PID/pagemap) reports and re-arms
 * the written pages. The userfaultfd stays open for the life of the process.
 *
 * Environment (docs/ARCHITECTURE.md, "Process memory as a dirty source"):
 *   KVMPRESYNC_TRACK_PATH=FILE   mode "path": register only mappings of FILE (QEMU's memory-backend-file,
 *                                e.g. /dev/shm/NAME); FILE may be an fnmatch(3) pattern (FNM_PATHNAME), e.g.
 *                                libvirt's /var/lib/libvirt/qemu/ram/libvirt/qemu/[0-9]*-NAME/pc.ram. QEMU maps it after constructors run, so a thread rescans
 *                                /proc/self/maps every KVMPRESYNC_TRACK_RESCAN_MS (default 10) until it appears,
 *                                then once more after 1 s, and ends (gives up after KVMPRESYNC_TRACK_TIMEOUT_MS,
 *                                default 120000).
 *   KVMPRESYNC_TRACK_ALL=1       mode "all": every mapping that may be made writable (VmFlag "mw"), including later
 *                                ones: mmap/mmap64/mremap are interposed and register their result before
 *                                returning; a thread rescans /proc/self/smaps every KVMPRESYNC_TRACK_RESCAN_MS
 *                                (default 200) for mappings made inside libc (VmFlags "mw" without "uw").
 *   KVMPRESYNC_TRACK_STATUS=FILE status lines appended to FILE (created 0644), else to stderr:
 *                                  kvmpresync-track pid=P mode=path|all features=0x.. user-mode-only=0|1
 *                                  registered 0xSTART-0xEND NAME
 *                                  error STEP errno=N (text) [0xSTART-0xEND NAME]
 *                                (registrations past the 1000th are counted, not listed: "registered-more N").
 * Registration does not write-protect: pages already present count as written at the first scan, so nothing
 * written before registration is missed.
 * fork(2) (mode "all"): a pthread_atfork child handler opens a fresh userfaultfd in the child, registers every
 * writable mapping again and write-protects it (the child's first scan reports what it wrote after fork) and starts
 * the child's rescan thread; its status header carries "forked-from=PARENT". exec(2) needs nothing: the new program
 * gets LD_PRELOAD from its environment. Statically linked and setuid programs ignore LD_PRELOAD: no status line. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "../shim/pagemap_abi.h"

#define MAX_LOGGED_REGISTRATIONS 1000

static int g_uffd = -1;
static int g_status = 2;
static int g_mode_all;
static const char *g_path;
static long g_rescan_ms;
static long g_timeout_ms;
static unsigned long g_registered;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef void *(*mremap_fn)(void *, size_t, size_t, int, ...);
static mmap_fn real_mmap, real_mmap64;
static mremap_fn real_mremap;

static void status(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w;
    do {
        w = write(g_status, line, (size_t)n);
    } while (w < 0 && errno == EINTR);
}

/* Registers [start, end) (caller holds g_lock); logs it. */
static int register_range(uint64_t start, uint64_t end, const char *name)
{
    if (g_uffd < 0 || end <= start)
        return -EBADF;
    int r = kp_uffd_register_wp_impl(g_uffd, start, end - start, 0);
    if (r < 0) {
        status("error register errno=%d (%s) 0x%llx-0x%llx %s", -r, strerror(-r), (unsigned long long)start,
               (unsigned long long)end, name ? name : "");
        return r;
    }
    if (++g_registered <= MAX_LOGGED_REGISTRATIONS)
        status("registered 0x%llx-0x%llx %s", (unsigned long long)start, (unsigned long long)end, name ? name : "");
    else if (g_registered % 1000 == 0)
        status("registered-more %lu", g_registered - MAX_LOGGED_REGISTRATIONS);
    return 0;
}

static uint64_t page_up(uint64_t n)
{
    uint64_t p = (uint64_t)sysconf(_SC_PAGESIZE);
    return (n + p - 1) & ~(p - 1);
}

static void resolve(void)
{
    if (!real_mmap)
        real_mmap = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
    if (!real_mmap64)
        real_mmap64 = (mmap_fn)dlsym(RTLD_NEXT, "mmap64");
    if (!real_mremap)
        real_mremap = (mremap_fn)dlsym(RTLD_NEXT, "mremap");
}

/* A new mapping (mmap) is registered and write-protected at once (arm): nothing was written in it yet, and a page
 * this process only reads is never reported. A moved one (mremap) keeps its pages' state (not armed): pages
 * written before the move are reported by the next scan. */
static void after_map(void *p, size_t len, int arm)
{
    if (!g_mode_all || g_uffd < 0 || p == MAP_FAILED || len == 0)
        return;
    pthread_mutex_lock(&g_lock);
    /* A mapping that can never be written (no VM_MAYWRITE) is refused with EPERM: nothing to track there. */
    int r = kp_uffd_register_wp_impl(g_uffd, (uint64_t)(uintptr_t)p, page_up(len), arm ? KP_UFFD_ARM : 0);
    if (r == 0) {
        if (++g_registered <= MAX_LOGGED_REGISTRATIONS)
            status("registered 0x%llx-0x%llx mmap", (unsigned long long)(uintptr_t)p,
                   (unsigned long long)((uintptr_t)p + page_up(len)));
    } else if (r != -EPERM) {
        status("error register errno=%d (%s) 0x%llx-0x%llx mmap", -r, strerror(-r), (unsigned long long)(uintptr_t)p,
               (unsigned long long)((uintptr_t)p + page_up(len)));
    }
    pthread_mutex_unlock(&g_lock);
}

__attribute__((visibility("default"))) void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    resolve();
    void *p = real_mmap(addr, len, prot, flags, fd, off);
    after_map(p, len, 1);
    return p;
}

__attribute__((visibility("default"))) void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    resolve();
    void *p = (real_mmap64 ? real_mmap64 : real_mmap)(addr, len, prot, flags, fd, off);
    after_map(p, len, 1);
    return p;
}

/* mremap drops a mapping's userfaultfd registration unless UFFD_FEATURE_EVENT_REMAP is negotiated (it is not: it
 * would make mremap wait for a reader), so the result is registered again. */
__attribute__((visibility("default"))) void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    resolve();
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    void *p = real_mremap(old, old_len, new_len, flags, new_addr);
    after_map(p, new_len, 0);
    return p;
}

/* Reads a whole /proc file into a growing private buffer (mapped with the real mmap: no interposition, no malloc). */
static char *read_proc(const char *path, size_t *len)
{
    static char *buf;
    static size_t cap;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t n = 0;
    for (;;) {
        if (cap - n < 65536) {
            size_t ncap = cap ? cap * 2 : (1u << 20);
            char *nb = real_mmap(NULL, ncap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (nb == MAP_FAILED) {
                close(fd);
                return NULL;
            }
            if (buf) {
                memcpy(nb, buf, n);
                munmap(buf, cap);
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Mode "path": registers every mapping of g_path not registered yet; returns how many mappings of it exist. */
static int scan_path(void)
{
    size_t len;
    char *text = read_proc("/proc/self/smaps", &len);
    if (!text)
        return 0;
    int found = 0;
    uint64_t start = 0, end = 0;
    int mine = 0;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        unsigned long long s, e;
        int name_at = 0;
        if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %n", &s, &e, &name_at) == 2 && name_at > 0 && strchr(line, '-') < strchr(line, ' ')) {
            start = s;
            end = e;
            const char *name = line + name_at;
            mine = fnmatch(g_path, name, FNM_PATHNAME) == 0; /* a plain path matches itself */
            if (mine)
                found++;
        } else if (mine && strncmp(line, "VmFlags:", 8) == 0) {
            if (!strstr(line, " uw"))
                register_range(start, end, g_path);
            mine = 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    return found;
}

/* Mode "all": registers every VMA that may be written (VmFlag mw) and is not registered (no uw); arm: write-protects
 * what it registers at once (a forked child's re-registration). */
static void scan_all(int arm)
{
    size_t len;
    char *text = read_proc("/proc/self/smaps", &len);
    if (!text)
        return;
    uint64_t start = 0, end = 0;
    char name[256] = "";
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        unsigned long long s, e;
        int name_at = 0;
        if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %n", &s, &e, &name_at) == 2 && name_at > 0 && strchr(line, '-') < strchr(line, ' ')) {
            start = s;
            end = e;
            snprintf(name, sizeof(name), "%s", line + name_at);
        } else if (strncmp(line, "VmFlags:", 8) == 0) {
            /* [vvar]/[vdso]/[vsyscall] have no mw; VM_IO/VM_PFNMAP mappings (io, pf) cannot be tracked */
            if (strstr(line, " mw") && !strstr(line, " uw") && !strstr(line, " io") && !strstr(line, " pf") && start < end) {
                int r = kp_uffd_register_wp_impl(g_uffd, start, end - start, arm ? KP_UFFD_ARM : 0);
                if (r == 0) {
                    if (++g_registered <= MAX_LOGGED_REGISTRATIONS)
                        status("registered 0x%llx-0x%llx %s", (unsigned long long)start, (unsigned long long)end,
                               name[0] ? name : "rescan");
                } else if (r != -EPERM && r != -EINVAL) {
                    status("error register errno=%d (%s) 0x%llx-0x%llx %s", -r, strerror(-r),
                           (unsigned long long)start, (unsigned long long)end, name);
                }
            }
            start = end = 0;
        }
        line = nl ? nl + 1 : NULL;
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void *rescan_thread(void *arg)
{
    (void)arg;
    if (g_mode_all) {
        for (;;) {
            pthread_mutex_lock(&g_lock);
            scan_all(0);
            pthread_mutex_unlock(&g_lock);
            sleep_ms(g_rescan_ms);
        }
    }
    for (long waited = 0; waited <= g_timeout_ms; waited += g_rescan_ms) {
        pthread_mutex_lock(&g_lock);
        int found = scan_path();
        pthread_mutex_unlock(&g_lock);
        if (found > 0) {
            sleep_ms(1000); /* a second look, for a backend mapped in parts */
            pthread_mutex_lock(&g_lock);
            scan_path();
            pthread_mutex_unlock(&g_lock);
            status("path-scan done %s", g_path);
            return NULL;
        }
        sleep_ms(g_rescan_ms);
    }
    status("error path-scan errno=%d (%s) %s never mapped within %ld ms", ETIMEDOUT, strerror(ETIMEDOUT), g_path,
           g_timeout_ms);
    return NULL;
}

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    long n = strtol(v, NULL, 10);
    return n > 0 ? n : dflt;
}

static void start_rescan_thread(void)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&t, &attr, rescan_thread, NULL);
    pthread_attr_destroy(&attr);
    if (r != 0)
        status("error pthread_create errno=%d (%s)", r, strerror(r));
}

/* The start of tracking in a process (forked_from: its parent, when a fork handler starts it in a child; else 0):
 * a fresh userfaultfd, the status header (with "forked-from=PARENT" in a child) and, in mode "all", every writable
 * mapping registered under g_lock (arm: write-protected at once). -1 when there is no userfaultfd (the error is in the
 * status). */
static int start_tracking(pid_t forked_from, int arm)
{
    uint64_t features = 0;
    int64_t fd = kp_uffd_open_impl(KP_UFFD_FEATURES_WANTED, &features);
    if (fd < 0) {
        if (forked_from > 0)
            status("error userfaultfd errno=%d (%s) in child pid=%d of %d", (int)-fd, strerror((int)-fd), (int)getpid(),
                   (int)forked_from);
        else
            status("error userfaultfd errno=%d (%s): needs Linux >= 6.7 with UFFD_FEATURE_WP_ASYNC", (int)-fd,
                   strerror((int)-fd));
        return -1;
    }
    g_uffd = (int)fd;
    g_registered = 0;
    char from[32] = "";
    if (forked_from > 0)
        snprintf(from, sizeof(from), " forked-from=%d", (int)forked_from);
    status("kvmpresync-track pid=%d mode=%s features=0x%llx user-mode-only=%d%s", (int)getpid(), g_mode_all ? "all" : "path",
           (unsigned long long)(features & ~KP_UFFD_FEATURE_USER_MODE_ONLY_BIT),
           (features & KP_UFFD_FEATURE_USER_MODE_ONLY_BIT) ? 1 : 0, from);
    if (g_mode_all) {
        pthread_mutex_lock(&g_lock);
        scan_all(arm);
        pthread_mutex_unlock(&g_lock);
    }
    return 0;
}

/* fork(2) without UFFD_FEATURE_EVENT_FORK (which would make fork wait for a reader) gives the child no registration:
 * its VMAs lose the userfaultfd context and its PTEs the write-protect bits, and only the forking thread survives
 * (no rescan thread). The prepare/parent handlers hold g_lock across fork so the child never inherits it taken. */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&g_lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&g_lock);
}

static __thread volatile unsigned char t_touch;

/* In the child: a fresh userfaultfd, every writable mapping registered and write-protected at once (armed), so the
 * child's first scan reports what the child wrote after fork, not the pages it inherited. Writes made by libc inside
 * fork() before this handler ran (the thread descriptor, the stack) would be lost: the handler writes its own stack
 * frame's page and a thread-local variable again after arming, so those pages are reported. The parent's
 * userfaultfd (inherited, O_CLOEXEC) is closed here: the parent keeps its own reference. */
static void atfork_child(void)
{
    pthread_mutex_init(&g_lock, NULL);
    int parent_uffd = g_uffd;
    pid_t parent = getppid();
    g_uffd = -1;
    if (parent_uffd >= 0)
        close(parent_uffd);
    if (!g_mode_all)
        return; /* path mode tracks one process (QEMU), which does not fork its guest RAM */
    if (start_tracking(parent, 1) < 0)
        return;
    volatile unsigned char frame = 0;
    frame = (unsigned char)(frame + 1);
    t_touch = (unsigned char)(t_touch + frame);
    start_rescan_thread();
}

__attribute__((constructor)) static void kp_track_init(void)
{
    resolve();
    const char *path = getenv("KVMPRESYNC_TRACK_PATH");
    const char *all = getenv("KVMPRESYNC_TRACK_ALL");
    g_path = path && *path ? path : NULL;
    g_mode_all = all && *all && strcmp(all, "0") != 0;
    if (!g_path && !g_mode_all)
        return; /* loaded but not asked to track anything */
    const char *st = getenv("KVMPRESYNC_TRACK_STATUS");
    if (st && *st) {
        int fd = open(st, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0)
            g_status = fd;
    }
    g_rescan_ms = env_long("KVMPRESYNC_TRACK_RESCAN_MS", g_mode_all ? 200 : 10);
    g_timeout_ms = env_long("KVMPRESYNC_TRACK_TIMEOUT_MS", 120000);
    if (start_tracking(0, 0) < 0)
        return;
    if (g_mode_all) {
        int r = pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
        if (r != 0)
            status("error pthread_atfork errno=%d (%s): forked children are not tracked", r, strerror(r));
    }
    start_rescan_thread();
}
