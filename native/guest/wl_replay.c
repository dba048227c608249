/*
 * wl_replay.c — workload 5: replays a recorded dirty-page trace. The VMM owns the trace; the guest
 * asks it for one batch at a time (OUT KP_PORT_REPLAY, value = the batch's sequence number), and
 * the VMM answers by writing struct kp_replay_batch into the replay mailbox (KP_REPLAY_MAILBOX_GPA):
 * runs of page indices inside the replay region, and the guest-clock time the batch is due (its
 * trace interval's start). The guest paces until then (PACE, so heartbeats, pause and migration
 * work as for every workload), rewrites every listed page in full (kp_region_write_page: version
 * bumped, content verifiable by the heartbeat), reports the interval's recorded progress, and asks
 * for the next batch. Batch KP_REPLAY_END (trace over, or a VMM without the trace, e.g. a migration
 * destination) leaves only heartbeats.
 *
 * params[0] = replay region pages (the trace's page count); params[1] = the region's first page
 * number as the VMM computed it (checked against the guest's own placement). The replay region is
 * the workload's only region; it is written once (version 1) at setup. Layout: docs/WORKLOADS.md.
 */
#include "rt.h"

#define SETUP_YIELD_EVERY 256 /* pages (1 MiB) between yields while writing the region at setup */

struct replay {
    struct kp_region region;
    const volatile struct kp_replay_batch *mailbox;
    uint64_t seq;   /* sequence number of the batch in the mailbox */
    int pending;    /* the mailbox holds batch seq, not yet written */
    int ended;
};

static void bad_batch(struct kp_rt *rt, const struct replay *r, const char *what, uint64_t value)
{
    kp_puts(rt, "kp-guest: replay: batch ");
    kp_put_dec(rt, r->seq);
    kp_puts(rt, ": ");
    kp_puts(rt, what);
    kp_puts(rt, " (");
    kp_put_hex(rt, value);
    kp_puts(rt, "); the VMM's replay mailbox is inconsistent with this guest: rebuild both from the same kvmpresync_guest.h\n");
    kp_exit(rt, KP_EXIT_BAD_WORKLOAD);
}

/* Asks the VMM for the next batch and checks what it wrote before anything trusts it. */
static void request(struct kp_rt *rt, struct replay *r)
{
    r->seq++;
    kp_out32(rt, KP_PORT_REPLAY, (uint32_t)r->seq);
    const volatile struct kp_replay_batch *b = r->mailbox;
    if (b->seq != r->seq) bad_batch(rt, r, "the mailbox holds another sequence number", b->seq);
    if (b->flags & KP_REPLAY_END) { r->ended = 1; return; }
    if (b->flags != 0 || b->reserved != 0) bad_batch(rt, r, "unknown flags or non-zero reserved field", b->flags);
    if (b->run_count > KP_REPLAY_MAX_RUNS) bad_batch(rt, r, "run_count exceeds KP_REPLAY_MAX_RUNS", b->run_count);
    uint64_t pages = 0;
    for (uint32_t i = 0; i < b->run_count; i++) {
        uint64_t first = b->runs[i].first, count = b->runs[i].count;
        if (count == 0 || first + count > r->region.pages) bad_batch(rt, r, "a run is empty or ends past the replay region", first);
        pages += count;
    }
    if (pages != b->pages) bad_batch(rt, r, "the runs do not add up to the batch's page count", b->pages);
    r->pending = 1;
}

static uint64_t replay_step(struct kp_rt *rt, void *ctx, uint64_t now)
{
    struct replay *r = ctx;
    if (!r->pending) request(rt, r);
    if (r->ended) return KP_NEVER;
    const volatile struct kp_replay_batch *b = r->mailbox;
    if (now < b->due_us) return b->due_us;
    for (uint32_t i = 0; i < b->run_count; i++) {
        uint64_t first = b->runs[i].first, count = b->runs[i].count;
        for (uint64_t p = 0; p < count; p++) kp_region_write_page(rt, r->region, first + p);
    }
    r->pending = 0;
    kp_progress(rt, b->progress);
    return now; /* back to kp_loop (heartbeat check), then straight to the next batch */
}

void kp_run_replay(struct kp_rt *rt)
{
    struct replay r;
    kp_memset(&r, 0, sizeof r);
    uint64_t pages = rt->boot->params[0];
    if (pages == 0 || pages > UINT32_MAX)
        kp_fail(rt, KP_EXIT_BAD_WORKLOAD, "replay: params[0] (replay region pages, the trace's page count) must be 1 .. 2^32-1");
    kp_work_reserve(rt, pages, "replay");
    r.region = kp_region_alloc(rt, pages << KP_PAGE_SHIFT);
    if (rt->boot->params[1] != r.region.pfn) {
        kp_puts(rt, "kp-guest: replay: the VMM placed the replay region at page ");
        kp_put_hex(rt, rt->boot->params[1]);
        kp_puts(rt, " (params[1]) but this guest puts it at ");
        kp_put_hex(rt, r.region.pfn);
        kp_puts(rt, ": rebuild the VMM and guest from the same sources\n");
        kp_exit(rt, KP_EXIT_BAD_WORKLOAD);
    }
    r.mailbox = kp_gpa(rt, KP_REPLAY_MAILBOX_GPA);
    for (uint64_t i = 0; i < r.region.pages; i++) {   /* the traced guest's memory held data too */
        kp_region_write_page(rt, r.region, i);
        if ((i + 1) % SETUP_YIELD_EVERY == 0) kp_yield(rt);
    }
    kp_loop(rt, replay_step, &r);
}
