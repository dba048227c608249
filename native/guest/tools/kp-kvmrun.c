/*
 * kp-kvmrun.c — development tool: runs workload.bin on /dev/kvm with the boot layout of
 * kvmpresync_guest.h and KVM's own dirty log, to check the freestanding image (entry stub, port
 * I/O, pacing, rates, dirty-page counts) before the C# VMM exists. Not the project's VMM: one
 * vCPU, no migration, minimal error handling (each failure names the ioctl and exits).
 *
 * Usage: kp-kvmrun workload.bin --workload N [--seconds S] [--mem-mib M] [--fill-mib F]
 *                  [--zero-permille Z] [--hb-ms H] [--seed N] [--param I=V]... [--pattern-pages N]
 *                  [--expect-rate R] [--show-pages] [--cpl0] [--no-dirty-log]
 *
 * The guest starts at CPL 3 (user code/data segments 0x1b/0x23 in the GDT, U/S set in the page
 * tables, RFLAGS.IOPL = 3 so IN/OUT are allowed) unless --cpl0: on kvm_pvm hosts CPL 0 guest code
 * is emulated (~1 us per instruction) while CPL 3 code runs natively, ~600x faster.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "../../include/kvmpresync_guest.h"

#define DIE(what) do { fprintf(stderr, "kp-kvmrun: %s: %s\n", what, strerror(errno)); exit(2); } while (0)

struct run {
    uint8_t *mem;
    uint64_t mem_bytes, pages;
    int vm, vcpu;
    struct kvm_run *kr;
    struct timespec start;
    uint64_t latched;
    struct kp_boot_info *boot;
    int ready;
    uint64_t ready_us, progress, hb, hb_errors, hb_last_seq, hb_last_sum, hb_bad;
    uint64_t *bitmap, *second;
    uint64_t windows, window_sum, window_min, window_max, next_window, seconds, second_sum, second_windows;
    int show_pages, cpl0, no_dirty_log;
};

static uint64_t now_us(struct run *r)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)((int64_t)(t.tv_sec - r->start.tv_sec) * 1000000000 + (t.tv_nsec - r->start.tv_nsec)) / 1000;
}

static uint64_t dirty_harvest(struct run *r)
{
    struct kvm_dirty_log log = { .slot = 0 };
    uint64_t words = (r->pages + 63) / 64, n = 0;
    memset(r->bitmap, 0, words * 8);
    log.dirty_bitmap = r->bitmap;
    if (ioctl(r->vm, KVM_GET_DIRTY_LOG, &log) < 0) DIE("KVM_GET_DIRTY_LOG");
    for (uint64_t w = 0; w < words; w++) {
        n += (uint64_t)__builtin_popcountll(r->bitmap[w]);
        r->second[w] |= r->bitmap[w];
    }
    return n;
}

static void show_dirty(struct run *r, const char *when)
{
    printf("dirty pages %s:", when);
    uint64_t shown = 0;
    for (uint64_t p = 0; p < r->pages && shown < 40; p++)
        if (r->bitmap[p / 64] >> (p % 64) & 1) { printf(" %#lx", (unsigned long)(p << 12)); shown++; }
    printf("\n");
}

static void window(struct run *r)
{
    uint64_t n = r->no_dirty_log ? 0 : dirty_harvest(r);
    if (r->show_pages && r->windows < 3) show_dirty(r, "in window");
    r->windows++;
    r->window_sum += n;
    if (n < r->window_min) r->window_min = n;
    if (n > r->window_max) r->window_max = n;
    if (++r->second_windows == 10) {
        uint64_t u = 0;
        if (r->show_pages && r->seconds == 0) {
            printf("dirty pages in the first second after READY:");
            for (uint64_t p = 0; p < r->pages; p++)
                if ((r->second[p / 64] >> (p % 64) & 1) && (p < 0x4200 || p > 0x4203)) printf(" %#lx", (unsigned long)(p << 12));
            printf(" (pfns 0x4200-0x4203 left out: the version table when the fill is 64 MiB)\n");
        }
        for (uint64_t w = 0; w < (r->pages + 63) / 64; w++) { u += (uint64_t)__builtin_popcountll(r->second[w]); r->second[w] = 0; }
        r->second_sum += u;
        r->seconds++;
        r->second_windows = 0;
    }
}

static void setup_memory(struct run *r, const char *image)
{
    int fd = open(image, O_RDONLY);
    if (fd < 0) DIE(image);
    ssize_t n = read(fd, r->mem + KP_GUEST_LOAD_GPA, 1 << 20);
    if (n <= 0) DIE("read image");
    close(fd);
    uint64_t *gdt = (uint64_t *)(r->mem + KP_GDT_GPA);
    gdt[1] = 0x00AF9B000000FFFFULL;
    gdt[2] = 0x00CF93000000FFFFULL;
    gdt[3] = 0x00AFFB000000FFFFULL;   /* user code64, DPL 3 (selector 0x1b) */
    gdt[4] = 0x00CFF3000000FFFFULL;   /* user data, DPL 3 (selector 0x23) */
    uint64_t u = r->cpl0 ? 0 : 4;     /* U/S bit in every level for a CPL 3 guest */
    uint64_t *pml4 = (uint64_t *)(r->mem + KP_PAGE_TABLE_GPA), *pdpt = pml4 + 512;
    pml4[0] = (KP_PAGE_TABLE_GPA + 4096) | 0x23 | u;
    for (uint64_t g = 0; g * (1ULL << 30) < r->mem_bytes; g++) {
        uint64_t pd_gpa = KP_PAGE_TABLE_GPA + 8192 + g * 4096, *pd = (uint64_t *)(r->mem + pd_gpa);
        pdpt[g] = pd_gpa | 0x23 | u;
        for (uint64_t e = 0; e < 512; e++) {
            uint64_t a = (g << 30) + (e << 21);
            if (a < r->mem_bytes) pd[e] = a | 0xE3 | u;   /* present, writable, accessed, dirty, 2 MiB */
        }
    }
}

static void setup_vcpu(struct run *r, int kvm)
{
    struct { struct kvm_cpuid2 c; struct kvm_cpuid_entry2 e[256]; } cpuid = { .c.nent = 256 };
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0) DIE("KVM_GET_SUPPORTED_CPUID");
    if (ioctl(r->vcpu, KVM_SET_CPUID2, &cpuid) < 0) DIE("KVM_SET_CPUID2");
    struct kvm_sregs s;
    if (ioctl(r->vcpu, KVM_GET_SREGS, &s) < 0) DIE("KVM_GET_SREGS");
    struct kvm_segment code = { .base = 0, .limit = 0xFFFFFFFF, .selector = 0x08, .type = 11, .present = 1, .s = 1, .l = 1, .g = 1 };
    struct kvm_segment data = { .base = 0, .limit = 0xFFFFFFFF, .selector = 0x10, .type = 3, .present = 1, .s = 1, .db = 1, .g = 1 };
    s.cs = code;
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.gdt.base = KP_GDT_GPA;
    s.gdt.limit = 39;
    if (!r->cpl0) {
        s.cs.selector = 0x1b; s.cs.dpl = 3;
        s.ds.selector = s.es.selector = s.fs.selector = s.gs.selector = s.ss.selector = 0x23;
        s.ds.dpl = s.es.dpl = s.fs.dpl = s.gs.dpl = s.ss.dpl = 3;
    }
    s.cr3 = KP_PAGE_TABLE_GPA;
    s.cr4 = (1 << 5) | (1 << 9) | (1 << 10);
    s.cr0 = 1 | 2 | 16 | 32 | (1 << 16) | (1U << 31);
    s.efer = (1 << 8) | (1 << 10);
    if (ioctl(r->vcpu, KVM_SET_SREGS, &s) < 0) DIE("KVM_SET_SREGS");
    struct kvm_regs regs = { .rip = KP_GUEST_LOAD_GPA, .rsp = KP_STACK_TOP_GPA, .rflags = r->cpl0 ? 2 : 0x3002 /* IOPL 3: IN/OUT allowed at CPL 3 */ };
    if (ioctl(r->vcpu, KVM_SET_REGS, &regs) < 0) DIE("KVM_SET_REGS");
}

int main(int argc, char **argv)
{
    static struct run r;
    const char *image = NULL;
    uint64_t mem_mib = 256, fill_mib = 64, zero = 100, hb_ms = 100, seed = 1, workload = 0, pattern_pages = 0, params[16] = { 0 };
    double seconds = 10, expect_rate = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "--workload")) workload = strtoull(v, 0, 0), i++;
        else if (!strcmp(a, "--seconds")) seconds = atof(v), i++;
        else if (!strcmp(a, "--mem-mib")) mem_mib = strtoull(v, 0, 0), i++;
        else if (!strcmp(a, "--fill-mib")) fill_mib = strtoull(v, 0, 0), i++;
        else if (!strcmp(a, "--zero-permille")) zero = strtoull(v, 0, 0), i++;
        else if (!strcmp(a, "--hb-ms")) hb_ms = strtoull(v, 0, 0), i++;
        else if (!strcmp(a, "--seed")) seed = strtoull(v, 0, 0), i++;
        else if (!strcmp(a, "--pattern-pages")) pattern_pages = strtoull(v, 0, 0), i++;
        else if (!strcmp(a, "--expect-rate")) expect_rate = atof(v), i++;
        else if (!strcmp(a, "--show-pages")) r.show_pages = 1;
        else if (!strcmp(a, "--cpl0")) r.cpl0 = 1;
        else if (!strcmp(a, "--no-dirty-log")) r.no_dirty_log = 1;
        else if (!strcmp(a, "--param")) { unsigned k; unsigned long long x; if (sscanf(v, "%u=%lli", &k, &x) == 2 && k < 16) params[k] = x; i++; }
        else if (a[0] != '-' && !image) image = a;
        else { fprintf(stderr, "usage: see the header of kp-kvmrun.c\n"); return 2; }
    }
    if (!image) { fprintf(stderr, "kp-kvmrun: name workload.bin\n"); return 2; }

    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) DIE("open /dev/kvm");
    r.vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (r.vm < 0) DIE("KVM_CREATE_VM");
    r.mem_bytes = mem_mib << 20;
    r.pages = r.mem_bytes >> 12;
    r.mem = mmap(NULL, r.mem_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r.mem == MAP_FAILED) DIE("mmap guest memory");
    r.bitmap = calloc((r.pages + 63) / 64, 8);
    r.second = calloc((r.pages + 63) / 64, 8);
    setup_memory(&r, image);
    r.boot = (struct kp_boot_info *)(r.mem + KP_BOOT_INFO_GPA);
    *r.boot = (struct kp_boot_info){ .magic = KP_BOOT_MAGIC, .version = KP_BOOT_VERSION, .workload = (uint32_t)workload,
        .memory_size = r.mem_bytes, .seed = seed, .heap_start = 2 << 20, .fill_bytes = fill_mib << 20,
        .zero_permille = (uint32_t)zero, .heartbeat_ms = (uint32_t)hb_ms,
        .region_count = 1, .regions = { { 0, r.mem_bytes, 0 } } };
    memcpy(r.boot->params, params, sizeof params);
    uint64_t *list = NULL;
    if (pattern_pages) {
        uint64_t list_gpa = (r.mem_bytes - pattern_pages * 8) & ~4095ULL, lo = ((2 << 20) + (fill_mib << 20)) >> 12, hi = list_gpa >> 12;
        list = (uint64_t *)(r.mem + list_gpa);
        for (uint64_t i = 0; i < pattern_pages; i++) list[i] = lo + (hi - lo) * i / pattern_pages;
        r.boot->params[0] = pattern_pages;
        r.boot->params[1] = list_gpa;
    }
    struct kvm_userspace_memory_region region = { .slot = 0, .flags = r.no_dirty_log ? 0 : KVM_MEM_LOG_DIRTY_PAGES, .guest_phys_addr = 0,
        .memory_size = r.mem_bytes, .userspace_addr = (uint64_t)(uintptr_t)r.mem };
    if (ioctl(r.vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) DIE("KVM_SET_USER_MEMORY_REGION");
    r.vcpu = ioctl(r.vm, KVM_CREATE_VCPU, 0);
    if (r.vcpu < 0) DIE("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    r.kr = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, r.vcpu, 0);
    if (r.kr == MAP_FAILED) DIE("mmap kvm_run");
    setup_vcpu(&r, kvm);

    r.window_min = UINT64_MAX;
    clock_gettime(CLOCK_MONOTONIC, &r.start);
    uint64_t exits = 0, run_us = (uint64_t)(seconds * 1e6);
    int code = -1;
    char line[256];
    size_t len = 0;
    for (;;) {
        if (ioctl(r.vcpu, KVM_RUN, 0) < 0 && errno != EINTR) DIE("KVM_RUN");
        exits++;
        if (r.kr->exit_reason == KVM_EXIT_HLT) { printf("guest halted\n"); break; }
        if (r.kr->exit_reason != KVM_EXIT_IO || r.kr->io.size != 4) {
            struct kvm_regs regs;
            ioctl(r.vcpu, KVM_GET_REGS, &regs);
            fprintf(stderr, "kp-kvmrun: unexpected exit reason %u at rip %#llx\n", r.kr->exit_reason, regs.rip);
            return 1;
        }
        uint32_t *data = (uint32_t *)((uint8_t *)r.kr + r.kr->io.data_offset);
        uint16_t port = r.kr->io.port;
        if (r.kr->io.direction == KVM_EXIT_IO_IN) {
            if (port == KP_PORT_CLOCK_LO) { r.latched = now_us(&r); *data = (uint32_t)r.latched; }
            else *data = (uint32_t)(r.latched >> 32);
            continue;
        }
        uint64_t now = now_us(&r);
        switch (port) {
        case KP_PORT_PACE: {
            if (r.ready && now >= r.ready_us + run_us) goto done;
            if (r.ready && now >= r.next_window) { window(&r); r.next_window += 100000; if (r.next_window <= now) r.next_window = now + 100000; }
            uint64_t d = r.boot->mailbox.pace_deadline_us;
            if (d > now) { struct timespec t = { .tv_sec = (time_t)((d - now) / 1000000), .tv_nsec = (long)((d - now) % 1000000) * 1000 }; nanosleep(&t, NULL); }
            break;
        }
        case KP_PORT_PROGRESS:
            r.progress += *data;
            if (list && r.progress == pattern_pages) printf("pattern writes done %.3f s after READY\n", (now - r.ready_us) / 1e6);
            if (list && r.show_pages) { dirty_harvest(&r); show_dirty(&r, "after the pattern writes"); }
            break;
        case KP_PORT_HEARTBEAT:
            if (r.boot->mailbox.hb_seq != r.hb_last_seq + 1 || r.boot->mailbox.hb_prev != r.hb_last_sum) r.hb_bad++;
            r.hb_last_seq = r.boot->mailbox.hb_seq;
            r.hb_last_sum = r.boot->mailbox.hb_sum;
            r.hb_errors = r.boot->mailbox.hb_errors;
            r.hb += r.ready;
            break;
        case KP_PORT_READY:
            r.ready = 1;
            r.ready_us = now;
            r.next_window = now + 100000;
            if (!r.no_dirty_log) dirty_harvest(&r);
            memset(r.second, 0, (r.pages + 63) / 64 * 8);
            printf("READY after %.3f s, %u data pages filled, %lu exits so far\n", now / 1e6, *data, (unsigned long)exits);
            break;
        case KP_PORT_CONSOLE:
            if (*data == '\n' || len == sizeof line - 1) { line[len] = 0; printf("[guest] %s\n", line); len = 0; }
            else line[len++] = (char)*data;
            break;
        case KP_PORT_EXIT:
            code = (int)*data;
            goto done;
        default:
            fprintf(stderr, "kp-kvmrun: OUT to unknown port %#x\n", port);
            return 1;
        }
    }
done:;
    double s = (now_us(&r) - r.ready_us) / 1e6;
    if (code >= 0) printf("guest exited with code %d\n", code);
    printf("KVM run: %.2f s after READY, %lu exits (%.0f /s)\n", s, (unsigned long)exits, exits / (s > 0 ? s : 1));
    printf("  progress        %lu units, %.2f /s\n", (unsigned long)r.progress, r.progress / s);
    printf("  heartbeats      %lu after READY (%.2f /s), errors %lu, continuity errors %lu\n", (unsigned long)r.hb, r.hb / s,
           (unsigned long)r.hb_errors, (unsigned long)r.hb_bad);
    if (r.windows)
        printf("  KVM dirty log   per 100 ms: mean %.1f min %lu max %lu over %lu windows; per 1 s: mean %.1f over %lu s\n",
               (double)r.window_sum / r.windows, (unsigned long)r.window_min, (unsigned long)r.window_max, (unsigned long)r.windows,
               r.seconds ? (double)r.second_sum / r.seconds : 0.0, (unsigned long)r.seconds);
    int ok = code <= 0 && r.hb_errors == 0 && r.hb_bad == 0 && r.ready;
    if (expect_rate > 0) {
        double dev = 100.0 * (r.progress / s - expect_rate) / expect_rate;
        printf("  rate check      %+.2f %% vs %.2f /s\n", dev, expect_rate);
        ok &= dev <= 5 && dev >= -5;
    }
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
