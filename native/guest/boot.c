/*
 * boot.c — checks struct kp_boot_info before anything else trusts it. Each failure prints what
 * was wrong and what the VMM must do, then exits with KP_EXIT_BAD_BOOT_INFO (KP_EXIT_BAD_WORKLOAD
 * for an unknown workload).
 */
#include "rt.h"

#define TWO_MIB (2ULL << 20)
#define MAX_MEMORY (62ULL << 30) /* one page directory per GiB in 0x10000..0x50000, minus PML4 and PDPT */

static void bad(struct kp_rt *rt, const char *what, uint64_t value)
{
    kp_puts(rt, "kp-guest: bad boot info: ");
    kp_puts(rt, what);
    kp_puts(rt, " (got ");
    kp_put_hex(rt, value);
    kp_puts(rt, ")\n");
    kp_exit(rt, KP_EXIT_BAD_BOOT_INFO);
}

void kp_boot_validate(struct kp_rt *rt, uint64_t image_end)
{
    const struct kp_boot_info *b = rt->boot;
    if (b->magic != KP_BOOT_MAGIC) bad(rt, "magic is not KP_BOOT_MAGIC 0x4942504b: write struct kp_boot_info at GPA 0x8000", b->magic);
    if (b->version != KP_BOOT_VERSION) bad(rt, "version is not KP_BOOT_VERSION 3: rebuild the VMM and guest from the same kvmpresync_guest.h", b->version);
    if (b->flags != 0) bad(rt, "flags are reserved and must be 0", b->flags);
    if (b->memory_size & (KP_PAGE_SIZE - 1)) bad(rt, "memory_size must be a multiple of 4096", b->memory_size);
    if (b->memory_size > MAX_MEMORY) bad(rt, "memory_size exceeds the 62 GiB the boot page tables can map", b->memory_size);
    if (b->region_count == 0 || b->region_count > KP_MAX_RAM_REGIONS)
        bad(rt, "region_count must be 1..KP_MAX_RAM_REGIONS (4): list the guest's RAM regions", b->region_count);
    if (b->content_lz4_permille > 1000)
        bad(rt, "content_lz4_permille must be 0..1000 (the data pages' LZ4 compressed/raw ratio in per mille; 0 or 1000 = random, incompressible)", b->content_lz4_permille);
    uint64_t pfn = 0, end = 0;
    for (uint32_t i = 0; i < b->region_count; i++) {
        const struct kp_ram_region *r = &b->regions[i];
        if (i == 0 && r->gpa != 0) bad(rt, "regions[0] must start at GPA 0 (it holds the boot layout and the image)", r->gpa);
        if (r->gpa & (TWO_MIB - 1)) bad(rt, "a region's gpa must be 2 MiB aligned (the boot page tables use 2 MiB pages)", r->gpa);
        if (i > 0 && r->gpa < end) bad(rt, "regions must be listed by address, without overlap", r->gpa);
        if (r->size == 0 || (r->size & (KP_PAGE_SIZE - 1))) bad(rt, "a region's size must be a non-zero multiple of 4096", r->size);
        if (r->first_pfn != pfn) bad(rt, "a region's first_pfn must follow the previous region's last page (0 for regions[0])", r->first_pfn);
        pfn += r->size >> KP_PAGE_SHIFT;
        end = r->gpa + r->size;
    }
    if (pfn << KP_PAGE_SHIFT != b->memory_size) bad(rt, "memory_size must be the sum of the regions' sizes", b->memory_size);
    if (b->regions[0].size < image_end) bad(rt, "regions[0] must hold the guest image and its .bss", b->regions[0].size);
    if (b->heap_start & (TWO_MIB - 1)) bad(rt, "heap_start must be 2 MiB aligned", b->heap_start);
    if (b->heap_start < image_end) bad(rt, "heap_start lies inside the guest image or its .bss: put it at the first 2 MiB boundary after the image", b->heap_start);
    if (b->heap_start >= b->memory_size) bad(rt, "heap_start must be below memory_size", b->heap_start);
    uint64_t room = b->memory_size - b->heap_start;
    if (b->fill_bytes > room) bad(rt, "fill_bytes does not fit between heap_start and memory_size", b->fill_bytes);
    if (b->zero_permille > 1000) bad(rt, "zero_permille must be 0..1000", b->zero_permille);
    if (b->workload > KP_WORKLOAD_DATABASE) {
        kp_puts(rt, "kp-guest: unknown workload ");
        kp_put_dec(rt, b->workload);
        kp_puts(rt, ": use 0 idle, 1 text, 2 audio, 3 movie, 4 pattern, 5 replay, 6 database\n");
        kp_exit(rt, KP_EXIT_BAD_WORKLOAD);
    }

    rt->seed = b->seed;
    rt->workload = b->workload;
    rt->memory_pages = b->memory_size >> KP_PAGE_SHIFT;
    rt->zero_permille = b->zero_permille;
    rt->content = kp_content_layout(b->content_lz4_permille);
    rt->heap_pfn = b->heap_start >> KP_PAGE_SHIFT;
    rt->fill_pages = (b->fill_bytes + KP_PAGE_SIZE - 1) >> KP_PAGE_SHIFT;  /* whole pages; fits: memory_size is page aligned */
    rt->work_pfn = rt->heap_pfn + rt->fill_pages;
    rt->hb_period_us = (uint64_t)(b->heartbeat_ms ? b->heartbeat_ms : KP_DEFAULT_HEARTBEAT_MS) * 1000;
    uint64_t samples = kp_param(rt, KP_PARAM_SAMPLES, KP_DEFAULT_SAMPLES);
    rt->hb_samples = (uint32_t)(samples > KP_MAX_SAMPLES ? KP_MAX_SAMPLES : samples);
    rt->sample_rng = kp_mix64(rt->seed ^ 0x4842ULL);
}

uint64_t kp_pfn_gpa(const struct kp_rt *rt, uint64_t pfn)
{
    const struct kp_boot_info *b = rt->boot;
    for (uint32_t i = 0; i < b->region_count && i < KP_MAX_RAM_REGIONS; i++) {
        const struct kp_ram_region *r = &b->regions[i];
        if (pfn >= r->first_pfn && pfn - r->first_pfn < (r->size >> KP_PAGE_SHIFT))
            return r->gpa + ((pfn - r->first_pfn) << KP_PAGE_SHIFT);
    }
    return UINT64_MAX;
}
