/*
 * rt.h — the guest runtime shared by every workload: the one state record (struct kp_rt, kept on
 * the guest's stack, so it lives in guest memory and migrates with it), the clock, pacing,
 * progress, heartbeat, console and exit, and the page-writing primitives whose content the
 * heartbeat can verify.
 *
 * Pages are named by their guest page number (pfn = guest-virtual address / 4096): the guest's RAM
 * regions appear one after another from virtual 0 (kvmpresync_guest.h), so pfn is the VMM's linear
 * page index, and kp_pfn_gpa gives the guest-physical address behind it. Three kinds of
 * page are "written" by the guest and can be verified:
 *   fill pages    [heap_pfn, heap_pfn + fill_done)  content = kp_page_data(seed, pfn, 0, content), or
 *                                                    all zero for the zero_permille chosen by kp_fill_is_zero
 *   region pages  [region_pfn, region_pfn + region_pages)  content = kp_page_data(seed, pfn, version,
 *                                                    content) with version[pfn - region_pfn] kept in guest memory
 * (content = the page layout for boot_info.content_lz4_permille, how compressible data pages are).
 *   pattern pages listed by the VMM (pattern workload): byte 0 = kp_pattern_byte(seed, pfn), rest zero
 */
#ifndef KP_RT_H
#define KP_RT_H

#include <stddef.h>
#include <stdint.h>
#include "../include/kvmpresync_guest.h"
#include "port.h"

#define KP_PAGE_SHIFT 12
#define KP_PAGE_SIZE 4096ULL
#define KP_RECENT 64            /* ring of the most recently written pfns (power of two) */
#define KP_DEFAULT_HEARTBEAT_MS 100
#define KP_DEFAULT_SAMPLES 8    /* pages verified per heartbeat */
#define KP_MAX_SAMPLES 64
#define KP_MAX_REPORTS 8        /* mismatch messages printed on the console, at most */
#define KP_NEVER UINT64_MAX

/* Common parameter slots, valid for every workload (see docs/WORKLOADS.md). */
#define KP_PARAM_STOP_MS 14     /* stop cleanly after this many guest-ms of workload; 0 = never */
#define KP_PARAM_SAMPLES 15     /* pages verified per heartbeat; 0 = KP_DEFAULT_SAMPLES */

/* How a data page is laid out (content.c): of its 512 words, literal_words are random or text words
 * (text_words of them text), the rest repeated runs; kp_content_layout derives it from the target
 * LZ4 ratio. lz4_permille 1000 = all random (incompressible). */
struct kp_content {
    uint32_t lz4_permille;
    uint32_t literal_words;
    uint32_t text_words;
};

struct kp_rt {
    uintptr_t mem_base;             /* address of GPA 0: 0 in the guest, the mapping in the harness */
    void *host;                     /* harness context (NULL in the guest) */
    struct kp_boot_info *boot;
    uint64_t seed;
    uint64_t memory_pages;
    uint32_t workload;
    uint32_t zero_permille;
    struct kp_content content;      /* data pages' layout (boot_info.content_lz4_permille) */

    /* initial fill */
    uint64_t heap_pfn;
    uint64_t fill_pages;            /* requested */
    uint64_t fill_done;             /* filled so far (heartbeats during the fill verify only these) */
    uint64_t fill_data_pages;       /* of fill_done, pages given data (the rest left zero) */

    /* work area: version table, then the workload's regions */
    uint64_t work_pfn;              /* first page after the fill */
    uint32_t *versions;             /* one per region page */
    uint64_t region_pfn;
    uint64_t region_pages;          /* reserved */
    uint64_t region_used;           /* handed out by kp_region_alloc */

    /* pattern workload */
    const uint64_t *pattern_list;
    uint64_t pattern_done;

    /* the newest written pages, verified first at each heartbeat */
    uint64_t recent[KP_RECENT];
    uint64_t recent_count;          /* total ever recorded; ring index = count % KP_RECENT */

    /* heartbeat */
    uint64_t hb_period_us;
    uint64_t hb_next_us;
    uint64_t hb_seq;
    uint64_t hb_sum;
    uint64_t hb_errors;             /* cumulative mismatching samples since boot */
    uint32_t hb_samples;
    uint32_t reports;
    uint64_t sample_rng;

    /* accounting */
    uint64_t progress_total;
    uint64_t page_writes;           /* whole-page writes after the fill (region + pattern) */
    uint64_t stop_at_us;            /* KP_NEVER = run until the VMM stops the guest */
    uint64_t sink;                  /* folds read data so reads are not optimised away */
};

/* ---- entry (main.c) ---- */
/* Validates boot info, fills, runs the workload. Never returns. image_end = first byte after
 * the guest image and its .bss (the heap must not start below it). */
__attribute__((noreturn)) void kp_guest_main(uintptr_t mem_base, void *host, uint64_t image_end);

/* ---- clock, pacing, telemetry (rt.c) ---- */
uint64_t kp_clock_us(struct kp_rt *rt);
void kp_pace(struct kp_rt *rt, uint64_t deadline_us);   /* sleep until the guest clock reaches deadline */
void kp_yield(struct kp_rt *rt);                        /* let the VMM pause us; returns at once otherwise */
void kp_progress(struct kp_rt *rt, uint32_t units);
/* A paced workload's schedule: every item due before due_us is done; lost_us = schedule time of the items dropped as
 * too late (cumulative). Stored in the mailbox; the VMM reads it at the next READY, PACE or PROGRESS. */
void kp_schedule(struct kp_rt *rt, uint64_t due_us, uint64_t lost_us);
void kp_ready(struct kp_rt *rt, uint64_t pages);
__attribute__((noreturn)) void kp_exit(struct kp_rt *rt, uint32_t code);
__attribute__((noreturn)) void kp_fail(struct kp_rt *rt, uint32_t code, const char *what);
void kp_puts(struct kp_rt *rt, const char *s);
void kp_put_dec(struct kp_rt *rt, uint64_t v);
void kp_put_hex(struct kp_rt *rt, uint64_t v);
/* Runs heartbeats and the workload's step until the stop time. step returns its next deadline. */
typedef uint64_t (*kp_step_fn)(struct kp_rt *rt, void *ctx, uint64_t now_us);
__attribute__((noreturn)) void kp_loop(struct kp_rt *rt, kp_step_fn step, void *ctx);

/* ---- memory ---- */
static inline void *kp_gpa(const struct kp_rt *rt, uint64_t gpa) { return (void *)(rt->mem_base + (uintptr_t)gpa); }
static inline uint64_t *kp_page(const struct kp_rt *rt, uint64_t pfn) { return (uint64_t *)kp_gpa(rt, pfn << KP_PAGE_SHIFT); }
void *kp_memset(void *dst, int c, size_t n);

/* ---- deterministic content (content.c) ---- */
uint64_t kp_mix64(uint64_t x);
static inline uint64_t kp_rand(uint64_t *state)        /* splitmix64 */
{
    *state += 0x9E3779B97F4A7C15ULL;
    return kp_mix64(*state);
}
static inline uint64_t kp_rand_below(uint64_t *state, uint64_t n) { return n ? kp_rand(state) % n : 0; }
static inline uint64_t kp_rand_range(uint64_t *state, uint64_t lo, uint64_t hi) { return hi > lo ? lo + kp_rand_below(state, hi - lo + 1) : lo; }
int kp_fill_is_zero(uint64_t seed, uint64_t pfn, uint32_t zero_permille);
uint8_t kp_pattern_byte(uint64_t seed, uint64_t pfn);
struct kp_content kp_content_layout(uint32_t lz4_permille);             /* 0 or 1000: all random */
void kp_page_data(uint64_t *page, uint64_t seed, uint64_t pfn, uint64_t version, const struct kp_content *c);
/* Compares page with what should be there; returns 0 if equal, else 1 + index of the first wrong word. */
enum kp_expect { KP_EXPECT_ZERO, KP_EXPECT_DATA, KP_EXPECT_PATTERN };
uint64_t kp_page_check(const uint64_t *page, uint64_t seed, uint64_t pfn, enum kp_expect kind, uint64_t version, uint64_t *digest,
                       const struct kp_content *c);
uint64_t kp_expected_word(uint64_t seed, uint64_t pfn, enum kp_expect kind, uint64_t version, uint64_t index, const struct kp_content *c);

/* ---- boot info, fill, regions, heartbeat ---- */
void kp_boot_validate(struct kp_rt *rt, uint64_t image_end);             /* boot.c: fails with a message */
uint64_t kp_pfn_gpa(const struct kp_rt *rt, uint64_t pfn);               /* boot.c: GPA of a page, UINT64_MAX if none */
void kp_fill(struct kp_rt *rt);                                          /* fill.c */
struct kp_region { uint64_t pfn; uint64_t pages; };
void kp_work_reserve(struct kp_rt *rt, uint64_t region_pages, const char *who);   /* region.c */
struct kp_region kp_region_alloc(struct kp_rt *rt, uint64_t bytes);
void kp_region_write_page(struct kp_rt *rt, struct kp_region r, uint64_t index);  /* rewrite one page */
void kp_region_write_bytes(struct kp_rt *rt, struct kp_region r, uint64_t offset, uint64_t len); /* pages covering the range, wrapping */
void kp_region_write_all(struct kp_rt *rt, struct kp_region r);
uint64_t kp_region_read(struct kp_rt *rt, struct kp_region r, uint64_t offset, uint64_t len, uint64_t stride);
void kp_record_write(struct kp_rt *rt, uint64_t pfn);
void kp_heartbeat(struct kp_rt *rt);                                     /* heartbeat.c */
uint64_t kp_fill_read(struct kp_rt *rt, uint64_t *cursor, uint64_t len); /* sequential read of the fill (compressed input) */

/* ---- workloads ---- */
__attribute__((noreturn)) void kp_run_idle(struct kp_rt *rt);
__attribute__((noreturn)) void kp_run_text(struct kp_rt *rt);
__attribute__((noreturn)) void kp_run_audio(struct kp_rt *rt);
__attribute__((noreturn)) void kp_run_movie(struct kp_rt *rt);
__attribute__((noreturn)) void kp_run_pattern(struct kp_rt *rt);
__attribute__((noreturn)) void kp_run_replay(struct kp_rt *rt);
__attribute__((noreturn)) void kp_run_database(struct kp_rt *rt);

/* params[i], or dflt when the VMM left it 0 */
static inline uint64_t kp_param(const struct kp_rt *rt, unsigned i, uint64_t dflt)
{
    uint64_t v = rt->boot->params[i];
    return v ? v : dflt;
}

#endif
