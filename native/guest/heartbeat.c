/*
 * heartbeat.c — the guest's self-check. Each heartbeat verifies hb_samples written pages in full:
 * the newest half from the ring of recently written pages (what a migration that dropped its
 * final dirty set would get wrong), the rest uniformly over every page the guest wrote (fill,
 * regions, pattern pages). hb_sum = hash(hb_prev, hb_seq, digests of the sampled pages);
 * hb_errors = mismatching samples since boot.
 */
#include "rt.h"

static int classify(const struct kp_rt *rt, uint64_t pfn, enum kp_expect *kind, uint64_t *version)
{
    *version = 0;
    if (pfn >= rt->heap_pfn && pfn < rt->heap_pfn + rt->fill_done) {
        *kind = kp_fill_is_zero(rt->seed, pfn, rt->zero_permille) ? KP_EXPECT_ZERO : KP_EXPECT_DATA;
        return 1;
    }
    if (pfn >= rt->region_pfn && pfn < rt->region_pfn + rt->region_used) {
        *version = rt->versions[pfn - rt->region_pfn];
        *kind = *version ? KP_EXPECT_DATA : KP_EXPECT_ZERO;
        return 1;
    }
    if (rt->pattern_done) {
        *kind = KP_EXPECT_PATTERN;
        return 1;
    }
    return 0;
}

static void report(struct kp_rt *rt, uint64_t pfn, enum kp_expect kind, uint64_t version, uint64_t bad)
{
    const uint64_t *page = kp_page(rt, pfn);
    uint64_t word = bad - 1;
    kp_puts(rt, "kp-guest: heartbeat ");
    kp_put_dec(rt, rt->hb_seq + 1);
    kp_puts(rt, ": page ");
    kp_put_hex(rt, pfn);
    kp_puts(rt, " gpa ");
    kp_put_hex(rt, kp_pfn_gpa(rt, pfn));
    kp_puts(rt, kind == KP_EXPECT_DATA ? " (data v" : kind == KP_EXPECT_ZERO ? " (zero" : " (pattern");
    if (kind == KP_EXPECT_DATA) kp_put_dec(rt, version);
    kp_puts(rt, ") word ");
    kp_put_dec(rt, word);
    kp_puts(rt, " is ");
    kp_put_hex(rt, page[word]);
    kp_puts(rt, " expected ");
    kp_put_hex(rt, kp_expected_word(rt->seed, pfn, kind, version, word, &rt->content));
    kp_puts(rt, "; page header ");
    kp_put_hex(rt, page[0]);
    kp_puts(rt, " ");
    kp_put_hex(rt, page[1]);
    kp_puts(rt, "\n");
}

static uint64_t verify(struct kp_rt *rt, uint64_t pfn, uint64_t h)
{
    enum kp_expect kind;
    uint64_t version, digest = 0;
    if (!classify(rt, pfn, &kind, &version)) return h;
    uint64_t bad = kp_page_check(kp_page(rt, pfn), rt->seed, pfn, kind, version, &digest, &rt->content);
    if (bad) {
        rt->hb_errors++;
        if (rt->reports < KP_MAX_REPORTS) {
            rt->reports++;
            report(rt, pfn, kind, version, bad);
        }
    }
    return kp_mix64(h ^ digest ^ pfn);
}

static uint64_t random_written_pfn(struct kp_rt *rt, uint64_t universe)
{
    uint64_t r = kp_rand_below(&rt->sample_rng, universe);
    if (r < rt->fill_done) return rt->heap_pfn + r;
    r -= rt->fill_done;
    if (r < rt->region_used) return rt->region_pfn + r;
    r -= rt->region_used;
    return rt->pattern_list[r] ;
}

void kp_heartbeat(struct kp_rt *rt)
{
    uint64_t seq = rt->hb_seq + 1, prev = rt->hb_sum;
    uint64_t h = kp_mix64(prev ^ kp_mix64(seq));
    uint64_t newest = rt->hb_samples / 2;
    if (newest > rt->recent_count) newest = rt->recent_count;
    if (newest > KP_RECENT) newest = KP_RECENT;
    for (uint64_t k = 0; k < newest; k++)
        h = verify(rt, rt->recent[(rt->recent_count - 1 - k) % KP_RECENT], h);
    uint64_t universe = rt->fill_done + rt->region_used + rt->pattern_done;
    for (uint64_t k = newest; k < rt->hb_samples && universe; k++)
        h = verify(rt, random_written_pfn(rt, universe), h);

    rt->hb_seq = seq;
    rt->hb_sum = kp_mix64(h);
    struct kp_mailbox *m = &rt->boot->mailbox;
    m->hb_seq = seq;
    m->hb_prev = prev;
    m->hb_sum = rt->hb_sum;
    m->hb_errors = rt->hb_errors;
    m->progress_total = rt->progress_total;
    kp_out32(rt, KP_PORT_HEARTBEAT, (uint32_t)seq);
}
