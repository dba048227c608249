/*
 * wl_pattern.c — workload 4, a test instrument: after READY, writes one byte (offset 0,
 * kp_pattern_byte(seed, pfn)) into each page of the list the VMM placed at params[1]
 * (params[0] entries, u64 page numbers = GPA / 4096), exactly once, then only heartbeats.
 * A dirty-log test can then require the log to hold exactly these pages (plus the runtime's own:
 * boot-info page, stack, image .bss; see docs/WORKLOADS.md).
 */
#include "rt.h"

#define YIELD_EVERY 4096

struct pattern {
    uint64_t count;
    int written;
};

static void bad_list(struct kp_rt *rt, const char *what, uint64_t value)
{
    kp_puts(rt, "kp-guest: pattern: ");
    kp_puts(rt, what);
    kp_puts(rt, " (");
    kp_put_hex(rt, value);
    kp_puts(rt, ")\n");
    kp_exit(rt, KP_EXIT_BAD_WORKLOAD);
}

static uint64_t pattern_step(struct kp_rt *rt, void *ctx, uint64_t now)
{
    struct pattern *p = ctx;
    (void)now;
    if (p->written) return KP_NEVER;
    p->written = 1;
    for (uint64_t i = 0; i < p->count; i++) {
        uint64_t pfn = rt->pattern_list[i];
        *(volatile uint8_t *)kp_page(rt, pfn) = kp_pattern_byte(rt->seed, pfn);
        kp_record_write(rt, pfn);
        rt->pattern_done++;
        rt->page_writes++;
        if ((i + 1) % YIELD_EVERY == 0) kp_yield(rt);
    }
    kp_progress(rt, (uint32_t)p->count);
    return KP_NEVER;
}

void kp_run_pattern(struct kp_rt *rt)
{
    struct pattern p = { rt->boot->params[0], 0 };
    if (p.count) {
        uint64_t list = rt->boot->params[1];
        uint64_t mem = rt->memory_pages << KP_PAGE_SHIFT;
        uint64_t fill_end = rt->work_pfn << KP_PAGE_SHIFT;
        uint64_t heap = rt->heap_pfn << KP_PAGE_SHIFT;
        if (list & 7) bad_list(rt, "params[1], the list address, must be 8-byte aligned", list);
        if (list >= mem || p.count > (mem - list) / 8)
            bad_list(rt, "the page list (params[1], params[0] u64 entries) must lie inside guest memory", list);
        if (list + p.count * 8 > heap && list < fill_end)
            bad_list(rt, "the page list must lie below heap_start (the VMM's boot area) or after heap_start + fill_bytes", list);
        uint64_t list_first = list >> KP_PAGE_SHIFT, list_last = (list + p.count * 8 - 1) >> KP_PAGE_SHIFT;
        rt->pattern_list = kp_gpa(rt, list);
        for (uint64_t i = 0; i < p.count; i++) {
            uint64_t pfn = rt->pattern_list[i];
            if (pfn < rt->work_pfn || pfn >= rt->memory_pages)
                bad_list(rt, "a listed page is outside heap_start + fill_bytes .. memory_size", pfn);
            if (pfn >= list_first && pfn <= list_last)
                bad_list(rt, "a listed page holds the list itself", pfn);
        }
    }
    kp_loop(rt, pattern_step, &p);
}
