/*
 * fill.c — the initial fill: fill_pages from heap_start get version-0 data, except zero_permille
 * of them (chosen by kp_fill_is_zero) left untouched and all-zero, like a real guest's heap and page
 * cache. Every 1 MiB the guest yields (so the VMM can pause it promptly) and keeps heartbeating.
 */
#include "rt.h"

#define YIELD_PAGES 256 /* 1 MiB */

void kp_fill(struct kp_rt *rt)
{
    uint64_t pfn = rt->heap_pfn;
    while (rt->fill_done < rt->fill_pages) {
        uint64_t chunk = rt->fill_pages - rt->fill_done;
        if (chunk > YIELD_PAGES) chunk = YIELD_PAGES;
        for (uint64_t i = 0; i < chunk; i++, pfn++) {
            if (!kp_fill_is_zero(rt->seed, pfn, rt->zero_permille)) {
                kp_page_data(kp_page(rt, pfn), rt->seed, pfn, 0, &rt->content);
                rt->fill_data_pages++;
                kp_record_write(rt, pfn);
            }
            rt->fill_done++;
        }
        uint64_t now = kp_clock_us(rt);
        if (now >= rt->hb_next_us) {
            kp_heartbeat(rt);
            rt->hb_next_us = now + rt->hb_period_us;
        }
        kp_yield(rt);
    }
}

uint64_t kp_fill_read(struct kp_rt *rt, uint64_t *cursor, uint64_t len)
{
    uint64_t bytes = rt->fill_pages << KP_PAGE_SHIFT, sum = 0;
    const uint64_t *base = kp_gpa(rt, rt->heap_pfn << KP_PAGE_SHIFT);
    if (!bytes) return 0;
    for (uint64_t done = 0; done < len; done += 8) {
        if (*cursor + 8 > bytes) *cursor = 0;
        sum += base[*cursor / 8];
        *cursor += 8;
    }
    return sum;
}
