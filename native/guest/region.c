/*
 * region.c — the work area after the fill: a version table (one u32 per region page), then the
 * workload's regions, handed out in order. Writing a region page bumps its version and rewrites
 * the whole page as kp_page_data(seed, pfn, version, content): a real store to every byte, so the page is
 * dirty, and content the heartbeat can recompute.
 */
#include "rt.h"

void kp_work_reserve(struct kp_rt *rt, uint64_t region_pages, const char *who)
{
    uint64_t table_pages = (region_pages * sizeof(uint32_t) + KP_PAGE_SIZE - 1) >> KP_PAGE_SHIFT;
    uint64_t end = rt->work_pfn + table_pages + region_pages;
    if (end > rt->memory_pages) {
        kp_puts(rt, "kp-guest: not enough memory for the ");
        kp_puts(rt, who);
        kp_puts(rt, " workload: it needs ");
        kp_put_dec(rt, (table_pages + region_pages) << KP_PAGE_SHIFT);
        kp_puts(rt, " bytes after the fill (heap_start + fill_bytes), memory ends ");
        kp_put_dec(rt, rt->memory_pages > rt->work_pfn ? (rt->memory_pages - rt->work_pfn) << KP_PAGE_SHIFT : 0);
        kp_puts(rt, " bytes after it: lower fill_bytes or the workload's region params, or give the guest more memory\n");
        kp_exit(rt, KP_EXIT_NO_MEMORY);
    }
    rt->versions = kp_gpa(rt, rt->work_pfn << KP_PAGE_SHIFT);
    kp_memset(rt->versions, 0, table_pages << KP_PAGE_SHIFT);
    rt->region_pfn = rt->work_pfn + table_pages;
    rt->region_pages = region_pages;
    rt->region_used = 0;
}

struct kp_region kp_region_alloc(struct kp_rt *rt, uint64_t bytes)
{
    struct kp_region r;
    r.pages = (bytes + KP_PAGE_SIZE - 1) >> KP_PAGE_SHIFT;
    if (r.pages == 0) r.pages = 1;
    if (rt->region_used + r.pages > rt->region_pages)
        kp_fail(rt, KP_EXIT_SELF_CHECK, "internal error: region allocation exceeds the reserved work area");
    r.pfn = rt->region_pfn + rt->region_used;
    rt->region_used += r.pages;
    return r;
}

void kp_record_write(struct kp_rt *rt, uint64_t pfn)
{
    rt->recent[rt->recent_count % KP_RECENT] = pfn;
    rt->recent_count++;
}

void kp_region_write_page(struct kp_rt *rt, struct kp_region r, uint64_t index)
{
    uint64_t pfn = r.pfn + index % r.pages;
    uint32_t version = ++rt->versions[pfn - rt->region_pfn];
    kp_page_data(kp_page(rt, pfn), rt->seed, pfn, version, &rt->content);
    kp_record_write(rt, pfn);
    rt->page_writes++;
}

void kp_region_write_bytes(struct kp_rt *rt, struct kp_region r, uint64_t offset, uint64_t len)
{
    if (!len) return;
    uint64_t first = offset >> KP_PAGE_SHIFT, last = (offset + len - 1) >> KP_PAGE_SHIFT;
    uint64_t count = last - first + 1;
    if (count > r.pages) count = r.pages;
    for (uint64_t i = 0; i < count; i++)
        kp_region_write_page(rt, r, first + i);
}

void kp_region_write_all(struct kp_rt *rt, struct kp_region r)
{
    for (uint64_t i = 0; i < r.pages; i++)
        kp_region_write_page(rt, r, i);
}

uint64_t kp_region_read(struct kp_rt *rt, struct kp_region r, uint64_t offset, uint64_t len, uint64_t stride)
{
    uint64_t bytes = r.pages << KP_PAGE_SHIFT, sum = 0;
    const uint8_t *base = kp_gpa(rt, r.pfn << KP_PAGE_SHIFT);
    if (stride < 8) stride = 8;
    for (uint64_t done = 0; done < len; done += stride) {
        uint64_t at = ((offset + done) % bytes) & ~7ULL;
        sum += *(const uint64_t *)(base + at);
    }
    return sum;
}
