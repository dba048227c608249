/*
 * workload.c — the project's workloads inside a real Linux guest (kp-workload, linked static and
 * started by the initramfs's /init; see tools/build-guest-image.sh and docs/WORKLOADS.md).
 *
 * The workload code is the freestanding guest's own (the sources in native/guest/, compiled with -DKP_HOSTED),
 * so text, audio, movie, database and idle write the same pages with the same content, a pure function of
 * (seed, page, version), and every heartbeat verifies a sample of what was written. This file is
 * the port backend for a Linux process: "guest memory" is an anonymous mapping of this process
 * (so it lives in the Linux guest's RAM and migrates with it), the clock is CLOCK_MONOTONIC, PACE
 * is an absolute clock_nanosleep, and each HEARTBEAT becomes one line on stdout (the serial
 * console):
 *
 *   KPHB seq=<n> prev=<16 hex> sum=<16 hex> progress=<units> selfcheck_errors=<n> t_ms=<ms>
 *
 * seq = previous seq + 1 and prev = previous sum, so a host reading the console across a
 * migration can check that the chain continues. Other lines: "KPREADY ...", "KPEXIT code=<n>",
 * and the runtime's "kp-guest: ..." messages (self-check mismatch reports).
 *
 * Settings come from the kernel command line (/proc/cmdline), or from the arguments when any are
 * given (for running it on a host): kp.workload=idle|text|audio|movie|database, kp.seed=N, kp.hb_ms=N,
 * kp.mem_mb=N (mapping size), kp.fill_mb=N, kp.zero_permille=N, kp.content_lz4_permille=N, kp.samples=N, kp.stop_ms=N,
 * kp.pI=V (boot_info.params[I]).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "../guest/rt.h"

struct host {
    uint8_t *mem;
    struct kp_boot_info *boot;
    struct timespec start;
    uint64_t latched_us;
    char line[512];
    size_t line_len;
};

static uint64_t now_us(const struct host *h)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t ns = (int64_t)(t.tv_sec - h->start.tv_sec) * 1000000000 + (t.tv_nsec - h->start.tv_nsec);
    return (uint64_t)ns / 1000;
}

/* One write per line, so lines never interleave with anything else on the console. */
static void emit(const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(1, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void emitf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emitf(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) emit(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

uint32_t kp_host_in32(struct kp_rt *rt, uint16_t port)
{
    struct host *h = rt->host;
    if (port == KP_PORT_CLOCK_LO) { h->latched_us = now_us(h); return (uint32_t)h->latched_us; }
    if (port == KP_PORT_CLOCK_HI) return (uint32_t)(h->latched_us >> 32);
    emitf("kp-workload: IN from unknown port %#x\n", port);
    exit(70);
}

void kp_host_out32(struct kp_rt *rt, uint16_t port, uint32_t value)
{
    struct host *h = rt->host;
    const struct kp_mailbox *m = &h->boot->mailbox;
    switch (port) {
    case KP_PORT_PACE: {
        uint64_t deadline = m->pace_deadline_us;
        if (deadline == 0) return;                      /* yield: nothing to do in a process */
        struct timespec t = h->start;
        uint64_t ns = (uint64_t)t.tv_nsec + (deadline % 1000000) * 1000;
        t.tv_sec += (time_t)(deadline / 1000000 + ns / 1000000000);
        t.tv_nsec = (long)(ns % 1000000000);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {}
        return;
    }
    case KP_PORT_PROGRESS: return;                      /* the total is in the mailbox */
    case KP_PORT_HEARTBEAT:
        emitf("KPHB seq=%lu prev=%016lx sum=%016lx progress=%lu selfcheck_errors=%lu t_ms=%lu\n",
              (unsigned long)m->hb_seq, (unsigned long)m->hb_prev, (unsigned long)m->hb_sum,
              (unsigned long)m->progress_total, (unsigned long)m->hb_errors, (unsigned long)(now_us(h) / 1000));
        return;
    case KP_PORT_READY:
        emitf("KPREADY fill_pages=%u t_ms=%lu\n", value, (unsigned long)(now_us(h) / 1000));
        return;
    case KP_PORT_CONSOLE:
        if (value == '\n' || h->line_len == sizeof h->line - 2) {
            h->line[h->line_len++] = '\n';
            emit(h->line, h->line_len);
            h->line_len = 0;
        } else {
            h->line[h->line_len++] = (char)value;
        }
        return;
    case KP_PORT_EXIT:
        if (h->line_len) { h->line[h->line_len++] = '\n'; emit(h->line, h->line_len); }
        emitf("KPEXIT code=%u\n", value);
        exit((int)value);
    default:
        emitf("kp-workload: OUT to unknown port %#x\n", port);
        exit(70);
    }
}

struct settings {
    uint32_t workload;
    uint64_t seed, hb_ms, mem_mb, fill_mb, zero_permille, content_lz4_permille, samples, stop_ms, params[16];
};

/* indexed by enum kp_workload; pattern and replay need a VMM, so they are not offered here */
static const char *const names[] = { "idle", "text", "audio", "movie", NULL, NULL, "database" };

static int parse_workload(const char *v, uint32_t *out)
{
    for (uint32_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (names[k] && !strcmp(v, names[k])) { *out = k; return 1; }
    return 0;
}

/* One "kp.name=value" token; anything else is ignored (the kernel's own parameters). */
static void apply(struct settings *s, const char *tok)
{
    if (strncmp(tok, "kp.", 3)) return;
    const char *eq = strchr(tok, '=');
    if (!eq) return;
    char name[32];
    size_t n = (size_t)(eq - tok - 3);
    if (n >= sizeof name) return;
    memcpy(name, tok + 3, n);
    name[n] = 0;
    const char *v = eq + 1;
    unsigned idx;
    if (!strcmp(name, "workload")) {
        if (!parse_workload(v, &s->workload)) {
            emitf("kp-workload: unknown kp.workload=%s (idle, text, audio, movie or database)\n", v);
            exit(2);
        }
    }
    else if (!strcmp(name, "seed")) s->seed = strtoull(v, 0, 0);
    else if (!strcmp(name, "hb_ms")) s->hb_ms = strtoull(v, 0, 0);
    else if (!strcmp(name, "mem_mb")) s->mem_mb = strtoull(v, 0, 0);
    else if (!strcmp(name, "fill_mb")) s->fill_mb = strtoull(v, 0, 0);
    else if (!strcmp(name, "zero_permille")) s->zero_permille = strtoull(v, 0, 0);
    else if (!strcmp(name, "content_lz4_permille")) s->content_lz4_permille = strtoull(v, 0, 0);
    else if (!strcmp(name, "samples")) s->samples = strtoull(v, 0, 0);
    else if (!strcmp(name, "stop_ms")) s->stop_ms = strtoull(v, 0, 0);
    else if (sscanf(name, "p%u", &idx) == 1 && idx < 16) s->params[idx] = strtoull(v, 0, 0);
}

static void apply_line(struct settings *s, char *line)
{
    for (char *tok = strtok(line, " \t\n"); tok; tok = strtok(NULL, " \t\n")) apply(s, tok);
}

int main(int argc, char **argv)
{
    static struct host h;
    struct settings s = { .workload = KP_WORKLOAD_IDLE, .seed = 1, .hb_ms = 100, .mem_mb = 0,
                          .fill_mb = 24, .zero_permille = 100 };
    if (argc > 1) {
        for (int i = 1; i < argc; i++) apply(&s, argv[i]);
    } else {
        char cmdline[4096] = "";
        int fd = open("/proc/cmdline", O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, cmdline, sizeof cmdline - 1) : -1;
        if (fd >= 0) close(fd);
        if (n < 0) { emitf("kp-workload: cannot read /proc/cmdline (is /proc mounted?)\n"); return 2; }
        cmdline[n] = 0;
        apply_line(&s, cmdline);
    }
    if (s.samples) s.params[KP_PARAM_SAMPLES] = s.samples;
    if (s.stop_ms) s.params[KP_PARAM_STOP_MS] = s.stop_ms;

    if (!s.mem_mb) s.mem_mb = s.workload == KP_WORKLOAD_DATABASE ? 192 : 64;   /* the database's 128 MiB buffer pool */
    uint64_t mem_bytes = s.mem_mb << 20;
    h.mem = mmap(NULL, mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (h.mem == MAP_FAILED) { emitf("kp-workload: cannot map %lu MiB: %s\n", (unsigned long)s.mem_mb, strerror(errno)); return 3; }

    h.boot = (struct kp_boot_info *)(h.mem + KP_BOOT_INFO_GPA);
    h.boot->magic = KP_BOOT_MAGIC;
    h.boot->version = KP_BOOT_VERSION;
    h.boot->workload = s.workload;
    h.boot->memory_size = mem_bytes;
    h.boot->region_count = 1;
    h.boot->regions[0] = (struct kp_ram_region){ 0, mem_bytes, 0 };
    h.boot->seed = s.seed;
    h.boot->heap_start = 2 << 20;
    h.boot->fill_bytes = s.fill_mb << 20;
    h.boot->zero_permille = (uint32_t)s.zero_permille;
    h.boot->content_lz4_permille = (uint32_t)s.content_lz4_permille;
    h.boot->heartbeat_ms = (uint32_t)s.hb_ms;
    memcpy(h.boot->params, s.params, sizeof s.params);
    emitf("KPSTART workload=%s seed=%lu hb_ms=%lu mem_mb=%lu fill_mb=%lu\n", names[s.workload],
          (unsigned long)s.seed, (unsigned long)s.hb_ms, (unsigned long)s.mem_mb, (unsigned long)s.fill_mb);
    clock_gettime(CLOCK_MONOTONIC, &h.start);
    kp_guest_main((uintptr_t)h.mem, &h, 0x110000);   /* heap_start must be >= 0x110000, as after a real image */
}
