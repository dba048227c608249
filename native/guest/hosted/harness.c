/*
 * harness.c — hosted development harness for the workload guest (NOT a VMM, no KVM involved).
 *
 * Runs the unchanged workload sources (compiled with -DKP_HOSTED) in this Linux process: guest
 * memory is an anonymous mapping, the guest clock is CLOCK_MONOTONIC since start, PACE is an
 * absolute clock_nanosleep, and the other ports are counted and checked here. Distinct dirty
 * pages are measured independently of the guest by write-protecting its memory each window
 * (mprotect + SIGSEGV), the mechanism KVM's dirty log uses, with 4 KiB granularity.
 *
 * Usage: kp-hosted --workload idle|text|audio|movie|database|pattern [options]   (--help lists them)
 * Exit status: 0 when every requested expectation held, 1 otherwise, 2 on usage errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "../rt.h"

#define MAX_WINDOWS 4096

struct host {
    uint8_t *mem;
    uint64_t mem_bytes;
    struct kp_boot_info *boot;
    struct timespec start;
    uint64_t latched_us;
    uint64_t run_us;                 /* wall time of the workload after READY */
    jmp_buf done;
    int exited;
    uint32_t exit_code;

    /* READY / progress */
    int ready;
    uint64_t ready_us, ready_pages;
    uint64_t progress, progress_events, window_progress_start;
    uint64_t last_progress_us, burst_intervals, burst_interval_sum;
    /* heartbeats */
    uint64_t hb_count, hb_after_ready, hb_last_seq, hb_last_sum, hb_errors, hb_continuity_errors, hb_first_error_seq;
    /* pacing accuracy */
    uint64_t paces, late_sum_us, late_max_us;
    /* dirty tracking windows */
    int tracking;
    uint8_t *dirty;                  /* one byte per guest page: written in this window */
    uint64_t window_dirty;
    uint64_t window_us, next_window_us, nwindows;
    uint64_t distinct[MAX_WINDOWS];
    uint8_t *second_union;           /* union of the last 10 windows, one byte per page */
    uint64_t second_windows, seconds, distinct_second_sum;
    /* corruption injection */
    const char *corrupt;             /* NULL, "newest" or "fill" */
    uint64_t corrupt_after_us, corrupt_pfn, corrupt_errors_before;
    int corrupted;
    /* pattern check */
    uint64_t *pattern_list, pattern_count;
    int pattern_checked, pattern_exact;
    uint64_t page_writes_at_ready, page_writes;
    /* console line buffer */
    char line[512];
    size_t line_len;
    int verbose;
};

static uint64_t now_us(struct host *h)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t ns = (int64_t)(t.tv_sec - h->start.tv_sec) * 1000000000 + (t.tv_nsec - h->start.tv_nsec);
    return (uint64_t)ns / 1000;
}

static void finish(struct kp_rt *rt, struct host *h)
{
    h->page_writes = rt->page_writes - h->page_writes_at_ready;   /* rt dies with the guest's stack */
    longjmp(h->done, 1);
}

/* ---- dirty tracking by write protection (how KVM builds its dirty log) ----
 * The guest mapping is made read-only at the start of each window; the first write to a page
 * faults, the handler marks the page and makes it writable again. The handler reaches the host
 * record through this one pointer: a signal handler has no other way in. */
static struct host *wp_host;

static void wp_fault(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    struct host *h = wp_host;
    uintptr_t a = (uintptr_t)info->si_addr, base = (uintptr_t)h->mem;
    if (sig != SIGSEGV || a < base || a >= base + h->mem_bytes) {
        signal(SIGSEGV, SIG_DFL);        /* a real crash: fault again, without us */
        return;
    }
    uint64_t pfn = (a - base) >> 12;
    if (!h->dirty[pfn]) { h->dirty[pfn] = 1; h->window_dirty++; }
    mprotect(h->mem + (pfn << 12), 4096, PROT_READ | PROT_WRITE);
}

static int wp_install(struct host *h)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = wp_fault;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    wp_host = h;
    h->dirty = calloc(h->mem_bytes >> 12, 1);
    return h->dirty && sigaction(SIGSEGV, &sa, NULL) == 0;
}

/* Starts a new window: clears the marks and write-protects all guest memory. */
static void wp_arm(struct host *h)
{
    memset(h->dirty, 0, h->mem_bytes >> 12);
    h->window_dirty = 0;
    if (mprotect(h->mem, h->mem_bytes, PROT_READ) != 0) h->tracking = 0;
}

static void window_sample(struct host *h)
{
    uint64_t pages = h->mem_bytes >> 12;
    if (h->nwindows < MAX_WINDOWS) h->distinct[h->nwindows++] = h->window_dirty;
    for (uint64_t p = 0; p < pages; p++) h->second_union[p] |= h->dirty[p];
    if (++h->second_windows == 1000000 / h->window_us) {
        uint64_t u = 0;
        for (uint64_t p = 0; p < pages; p++) { u += h->second_union[p]; h->second_union[p] = 0; }
        h->distinct_second_sum += u;
        h->seconds++;
        h->second_windows = 0;
    }
    wp_arm(h);
}

/* ---- pattern: after the writes, the dirty set must be the list plus the boot-info page ---- */
static int in_list(struct host *h, uint64_t pfn)
{
    for (uint64_t i = 0; i < h->pattern_count; i++) if (h->pattern_list[i] == pfn) return 1;
    return 0;
}

static void pattern_check(struct host *h)
{
    uint64_t pages = h->mem_bytes >> 12, missing = 0, extra = 0, n = 0;
    for (uint64_t i = 0; i < h->pattern_count; i++) missing += !h->dirty[h->pattern_list[i]];
    for (uint64_t p = 0; p < pages; p++) {
        if (!h->dirty[p]) continue;
        n++;
        if (p != KP_BOOT_INFO_GPA >> 12 && !in_list(h, p) && extra++ < 5)
            fprintf(stderr, "pattern: unexpected dirty page gpa %#lx\n", (unsigned long)(p << 12));
    }
    h->pattern_checked = 1;
    h->pattern_exact = h->tracking && missing == 0 && extra == 0;
    printf("pattern: %lu dirty pages after the writes, %lu listed pages missing, %lu unexpected\n",
           (unsigned long)n, (unsigned long)missing, (unsigned long)extra);
}

/* ---- ports ---- */
uint32_t kp_host_in32(struct kp_rt *rt, uint16_t port)
{
    struct host *h = rt->host;
    if (port == KP_PORT_CLOCK_LO) { h->latched_us = now_us(h); return (uint32_t)h->latched_us; }
    if (port == KP_PORT_CLOCK_HI) return (uint32_t)(h->latched_us >> 32);
    fprintf(stderr, "harness: IN from unknown port %#x\n", port);
    exit(1);
}

static void on_pace(struct kp_rt *rt, struct host *h)
{
    uint64_t deadline = h->boot->mailbox.pace_deadline_us, now = now_us(h);
    if (h->ready && now >= h->ready_us + h->run_us) finish(rt, h);
    if (h->ready && h->tracking && now >= h->next_window_us) {
        window_sample(h);
        h->next_window_us += h->window_us;
        if (h->next_window_us <= now) h->next_window_us = now + h->window_us;
    }
    if (h->corrupt && !h->corrupted && h->ready && now >= h->ready_us + h->corrupt_after_us) {
        if (!strcmp(h->corrupt, "newest") && rt->recent_count && deadline == rt->hb_next_us) {
            /* the guest sleeps until its heartbeat, which verifies the newest pages first */
            h->corrupt_pfn = rt->recent[(rt->recent_count - 1) % KP_RECENT];
        } else if (!strcmp(h->corrupt, "fill") && rt->fill_data_pages) {
            uint64_t pfn = rt->heap_pfn + (now * 2654435761u) % rt->fill_pages;
            while (kp_fill_is_zero(rt->seed, pfn, rt->zero_permille)) pfn = rt->heap_pfn + (pfn + 1 - rt->heap_pfn) % rt->fill_pages;
            h->corrupt_pfn = pfn;
        }
        if (h->corrupt_pfn) {
            h->mem[(h->corrupt_pfn << 12) + 1234] ^= 0x40;
            h->corrupted = 1;
            h->corrupt_errors_before = rt->hb_errors;
            printf("harness: flipped bit 6 of byte 1234 in page gpa %#lx (heartbeat errors so far %lu)\n",
                   (unsigned long)(h->corrupt_pfn << 12), (unsigned long)rt->hb_errors);
        }
    }
    if (deadline == 0) return;                                 /* yield */
    struct timespec t = h->start;
    uint64_t ns = (uint64_t)t.tv_nsec + (deadline % 1000000) * 1000;
    t.tv_sec += (time_t)(deadline / 1000000 + ns / 1000000000);
    t.tv_nsec = (long)(ns % 1000000000);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {}
    uint64_t woke = now_us(h);
    if (h->ready && woke > deadline) {
        uint64_t late = woke - deadline;
        h->paces++;
        h->late_sum_us += late;
        if (late > h->late_max_us) h->late_max_us = late;
    }
}

static void on_heartbeat(struct kp_rt *rt, struct host *h, uint32_t value)
{
    const struct kp_mailbox *m = &h->boot->mailbox;
    (void)rt;
    if (m->hb_seq != h->hb_last_seq + 1 || m->hb_prev != h->hb_last_sum || value != (uint32_t)m->hb_seq) {
        h->hb_continuity_errors++;
        fprintf(stderr, "harness: heartbeat discontinuity: seq %lu after %lu, prev %#lx after sum %#lx\n",
                (unsigned long)m->hb_seq, (unsigned long)h->hb_last_seq, (unsigned long)m->hb_prev, (unsigned long)h->hb_last_sum);
    }
    if (m->hb_errors > h->hb_errors && !h->hb_first_error_seq) h->hb_first_error_seq = m->hb_seq;
    h->hb_last_seq = m->hb_seq;
    h->hb_last_sum = m->hb_sum;
    h->hb_errors = m->hb_errors;
    h->hb_count++;
    h->hb_after_ready += h->ready;
    if (h->verbose) printf("hb seq=%lu sum=%016lx errors=%lu progress=%lu\n", (unsigned long)m->hb_seq,
                           (unsigned long)m->hb_sum, (unsigned long)m->hb_errors, (unsigned long)m->progress_total);
}

void kp_host_out32(struct kp_rt *rt, uint16_t port, uint32_t value)
{
    struct host *h = rt->host;
    switch (port) {
    case KP_PORT_PACE: on_pace(rt, h); break;
    case KP_PORT_PROGRESS: {
        uint64_t t = now_us(h);
        if (h->progress_events && value == 1 && t - h->last_progress_us < 1000000) {   /* keystrokes in a burst */
            h->burst_intervals++;
            h->burst_interval_sum += t - h->last_progress_us;
        }
        h->last_progress_us = t;
        h->progress += value;
        h->progress_events++;
        if (h->pattern_count && !h->pattern_checked && h->tracking) pattern_check(h);
        break;
    }
    case KP_PORT_HEARTBEAT: on_heartbeat(rt, h, value); break;
    case KP_PORT_READY:
        h->ready = 1;
        h->ready_us = now_us(h);
        h->ready_pages = value;
        h->page_writes_at_ready = rt->page_writes;
        h->next_window_us = h->ready_us + h->window_us;
        if (h->tracking) wp_arm(h);
        printf("harness: READY after %.3f s, %u data pages filled\n", h->ready_us / 1e6, value);
        break;
    case KP_PORT_CONSOLE:
        if (value == '\n' || h->line_len == sizeof h->line - 1) {
            h->line[h->line_len] = 0;
            printf("[guest] %s\n", h->line);
            h->line_len = 0;
        } else {
            h->line[h->line_len++] = (char)value;
        }
        break;
    case KP_PORT_EXIT:
        h->exited = 1;
        h->exit_code = value;
        finish(rt, h);
        break;
    default:
        fprintf(stderr, "harness: OUT to unknown port %#x\n", port);
        exit(1);
    }
}

/* Runs the guest until it exits or the run time is over (both longjmp back here). */
static void run_guest(struct host *h)
{
    if (!setjmp(h->done))
        kp_guest_main((uintptr_t)h->mem, h, 0x110000);   /* heap_start must be >= 0x110000, as after a real image */
}

/* ---- command line ---- */
static void usage(void)
{
    fprintf(stderr,
        "kp-hosted --workload idle|text|audio|movie|database|pattern [options]\n"
        "  --seconds S          run S s after READY (default 10)\n"
        "  --mem-mib M          guest memory (default 256)\n"
        "  --fill-kib K         initial fill (default 65536 = 64 MiB)\n"
        "  --zero-permille Z    fill pages left zero (default 100)\n"
        "  --hb-ms N            heartbeat period (default 100)\n"
        "  --seed N             PRNG seed (default 1)\n"
        "  --param I=V          boot_info.params[I] = V (repeatable)\n"
        "  --heap-start B       heap_start in bytes (default 2 MiB)\n"
        "  --magic N            boot_info.magic (default KP_BOOT_MAGIC)\n"
        "  --pattern-pages N    pattern: list N pages spread over the heap after the fill\n"
        "  --content-lz4-permille N  data pages' LZ4 compressed/raw ratio, per mille (default 0 = random)\n"
        "  --corrupt newest|fill  flip a byte in a written page after --corrupt-after-ms (default 2000)\n"
        "  --expect-rate R      require R progress units/s within --tolerance-pct (default 5)\n"
        "  --expect-key-ms M    require the mean in-burst keystroke interval M ms within the tolerance\n"
        "  --expect-exit C      require the guest to exit with code C (no run checks)\n"
        "  --expect-errors      require heartbeat errors > 0 (default: require 0)\n"
        "  --verbose            print every heartbeat\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static struct host h;
    const char *workload = NULL;
    double seconds = 10, tolerance = 5, expect_rate = 0, expect_key_ms = 0;
    uint64_t mem_mib = 256, fill_kib = 65536, zero_permille = 100, hb_ms = 100, seed = 1, content = 0;
    uint64_t heap_start = 2 << 20, magic = KP_BOOT_MAGIC, pattern_pages = 0, params[16] = { 0 };
    int expect_errors = 0, expect_exit = -1;
    h.corrupt_after_us = 2000000;
    h.window_us = 100000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && (i++, 1))
        if (ARG("--workload")) workload = v;
        else if (ARG("--seconds")) seconds = atof(v);
        else if (ARG("--mem-mib")) mem_mib = strtoull(v, 0, 0);
        else if (ARG("--fill-kib")) fill_kib = strtoull(v, 0, 0);
        else if (ARG("--zero-permille")) zero_permille = strtoull(v, 0, 0);
        else if (ARG("--content-lz4-permille")) content = strtoull(v, 0, 0);
        else if (ARG("--hb-ms")) hb_ms = strtoull(v, 0, 0);
        else if (ARG("--seed")) seed = strtoull(v, 0, 0);
        else if (ARG("--heap-start")) heap_start = strtoull(v, 0, 0);
        else if (ARG("--magic")) magic = strtoull(v, 0, 0);
        else if (ARG("--pattern-pages")) pattern_pages = strtoull(v, 0, 0);
        else if (ARG("--corrupt")) h.corrupt = v;
        else if (ARG("--corrupt-after-ms")) h.corrupt_after_us = strtoull(v, 0, 0) * 1000;
        else if (ARG("--expect-rate")) expect_rate = atof(v);
        else if (ARG("--expect-key-ms")) expect_key_ms = atof(v);
        else if (ARG("--tolerance-pct")) tolerance = atof(v);
        else if (ARG("--expect-exit")) expect_exit = atoi(v);
        else if (ARG("--param")) {
            unsigned idx; unsigned long long val;
            if (sscanf(v, "%u=%lli", &idx, &val) != 2 || idx > 15) usage();
            params[idx] = val;
        }
        else if (!strcmp(a, "--expect-errors")) expect_errors = 1;
        else if (!strcmp(a, "--verbose")) h.verbose = 1;
        else usage();
    }
    static const char *names[] = { "idle", "text", "audio", "movie", "pattern", "replay", "database" };
    uint32_t kind = 99;
    for (uint32_t k = 0; k < 7; k++) if (workload && k != KP_WORKLOAD_REPLAY && !strcmp(workload, names[k])) kind = k;
    if (!workload) usage();
    if (kind == 99) kind = (uint32_t)strtoul(workload, 0, 0);

    h.mem_bytes = mem_mib << 20;
    h.mem = mmap(NULL, h.mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (h.mem == MAP_FAILED) { perror("mmap guest memory"); return 2; }
    h.second_union = calloc(h.mem_bytes >> 12, 1);
    h.tracking = wp_install(&h);
    if (!h.tracking) fprintf(stderr, "harness: cannot install the write-fault handler: distinct-page counts unavailable\n");

    h.boot = (struct kp_boot_info *)(h.mem + KP_BOOT_INFO_GPA);
    h.boot->magic = (uint32_t)magic;
    h.boot->version = KP_BOOT_VERSION;
    h.boot->workload = kind;
    h.boot->memory_size = h.mem_bytes;
    h.boot->region_count = 1;   /* one region: the mapping is the guest's whole RAM */
    h.boot->regions[0] = (struct kp_ram_region){ 0, h.mem_bytes, 0 };
    h.boot->seed = seed;
    h.boot->heap_start = heap_start;
    h.boot->fill_bytes = fill_kib << 10;
    h.boot->zero_permille = (uint32_t)zero_permille;
    h.boot->content_lz4_permille = (uint32_t)content;
    h.boot->heartbeat_ms = (uint32_t)hb_ms;
    memcpy(h.boot->params, params, sizeof params);
    if (pattern_pages) {
        /* list in the last pages of memory; pages spread evenly between the fill and the list */
        uint64_t list_gpa = (h.mem_bytes - pattern_pages * 8) & ~4095ULL;
        uint64_t lo = (heap_start + (fill_kib << 10) + 4095) >> 12, hi = list_gpa >> 12;
        h.pattern_list = (uint64_t *)(h.mem + list_gpa);
        for (uint64_t i = 0; i < pattern_pages; i++) h.pattern_list[i] = lo + (hi - lo) * i / pattern_pages;
        h.pattern_count = pattern_pages;
        h.boot->params[0] = pattern_pages;
        h.boot->params[1] = list_gpa;
    }
    h.run_us = (uint64_t)(seconds * 1e6);
    clock_gettime(CLOCK_MONOTONIC, &h.start);

    run_guest(&h);

    /* ---- report ---- */
    int ok = 1;
    if (h.line_len) { h.line[h.line_len] = 0; printf("[guest] %s\n", h.line); }
    if (expect_exit >= 0) {
        printf("result: guest exit %s code %u (expected %d)\n", h.exited ? "with" : "never, last", h.exit_code, expect_exit);
        ok = h.exited && (int)h.exit_code == expect_exit;
        printf("%s\n", ok ? "PASS" : "FAIL");
        return ok ? 0 : 1;
    }
    if (h.exited) { printf("FAIL: guest exited with code %u\n", h.exit_code); return 1; }
    double run_s = (now_us(&h) - h.ready_us) / 1e6;
    printf("workload %s: %.2f s after READY\n", names[kind < 7 ? kind : 0], run_s);
    printf("  progress          %lu units, %.2f /s\n", (unsigned long)h.progress, h.progress / run_s);
    if (kind == KP_WORKLOAD_TEXT && h.burst_intervals)
        printf("  keystroke gap     %.1f ms mean over %lu in-burst intervals\n", h.burst_interval_sum / 1e3 / h.burst_intervals, (unsigned long)h.burst_intervals);
    printf("  heartbeats        %lu (%lu after READY: %.2f /s), errors %lu, continuity errors %lu\n", (unsigned long)h.hb_count,
           (unsigned long)h.hb_after_ready, h.hb_after_ready / run_s, (unsigned long)h.hb_errors, (unsigned long)h.hb_continuity_errors);
    printf("  page writes       %lu whole-page writes by the guest, %.1f /s\n", (unsigned long)h.page_writes, h.page_writes / run_s);
    printf("  pace lateness     mean %.0f us, max %lu us over %lu sleeps\n", h.paces ? (double)h.late_sum_us / h.paces : 0.0,
           (unsigned long)h.late_max_us, (unsigned long)h.paces);
    if (h.tracking && h.nwindows) {
        uint64_t sum = 0, mn = UINT64_MAX, mx = 0;
        for (uint64_t i = 0; i < h.nwindows; i++) { sum += h.distinct[i]; if (h.distinct[i] < mn) mn = h.distinct[i]; if (h.distinct[i] > mx) mx = h.distinct[i]; }
        printf("  distinct pages    per 100 ms: mean %.1f min %lu max %lu over %lu windows; per 1 s: mean %.1f over %lu s (write-protect tracking, guest memory only)\n",
               (double)sum / h.nwindows, (unsigned long)mn, (unsigned long)mx, (unsigned long)h.nwindows,
               h.seconds ? (double)h.distinct_second_sum / h.seconds : 0.0, (unsigned long)h.seconds);
    }
    if (expect_rate > 0) {
        double rate = h.progress / run_s, dev = 100.0 * (rate - expect_rate) / expect_rate;
        int good = dev <= tolerance && dev >= -tolerance;
        printf("  check rate        %.2f /s vs %.2f expected: %+.2f %% %s\n", rate, expect_rate, dev, good ? "ok" : "OUT OF TOLERANCE");
        ok &= good;
    }
    if (expect_key_ms > 0) {
        double mean = h.burst_intervals ? h.burst_interval_sum / 1e3 / h.burst_intervals : 0, dev = 100.0 * (mean - expect_key_ms) / expect_key_ms;
        int good = h.burst_intervals && dev <= tolerance && dev >= -tolerance;
        printf("  check keystrokes  %.1f ms vs %.1f expected: %+.2f %% %s\n", mean, expect_key_ms, dev, good ? "ok" : "OUT OF TOLERANCE");
        ok &= good;
    }
    double hb_dev = 100.0 * (h.hb_after_ready / run_s - 1000.0 / hb_ms) / (1000.0 / hb_ms);
    if (hb_dev > 5 || hb_dev < -5) { printf("  check heartbeats  rate off by %+.1f %%: FAIL\n", hb_dev); ok = 0; }
    if (h.hb_continuity_errors) ok = 0;
    if (expect_errors) {
        int good = h.corrupted ? h.hb_errors > h.corrupt_errors_before : h.hb_errors > 0;
        printf("  check corruption  %s (first failing heartbeat seq %lu)\n", good ? "detected" : "NOT DETECTED", (unsigned long)h.hb_first_error_seq);
        ok &= good && (!h.corrupt || h.corrupted);
    } else if (h.hb_errors) {
        ok = 0;
    }
    if (h.pattern_count) {
        printf("  check pattern     %s\n", h.pattern_exact ? "dirty set == listed pages + boot-info page" : "dirty set differs");
        ok &= h.pattern_exact && h.progress == h.pattern_count;
    }
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
