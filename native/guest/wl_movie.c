/*
 * wl_movie.c — workload 3: video playback. Per frame (25 fps) the decoder reads the compressed
 * stream sequentially from the filled heap (read-only), reads the previous reference frame
 * (motion compensation), writes a new YUV 4:2:0 reference frame into the next slot of the
 * decoded-picture pool (references plus frames queued for display), works in its heap (slice and
 * motion-vector buffers, temporary planes: a random part of it per frame), converts the picture
 * into an RGBA output frame and copies that into the X11 image the server shows (every page of both
 * rewritten). Late frames are dropped, as players do. Defaults fitted to mpv playing 720p H.264 with
 * its X11 output (tests/data/traces/apps/video-mpv.kptrace). progress = frames shown; schedule (kp_schedule) = the
 * frame ticker (a dropped frame loses its 40 ms).
 * Parameters: docs/WORKLOADS.md.
 */
#include "rt.h"
#include "ticker.h"

#define MAX_REFS 16

struct movie {
    struct kp_region fb, ximage, heap, refs[MAX_REFS];
    struct kp_ticker frame;
    uint64_t nrefs, frames, input_bytes, input_pos, ref_bytes, heap_writes, rng;
};

static uint64_t movie_step(struct kp_rt *rt, void *ctx, uint64_t now)
{
    struct movie *m = ctx;
    if (!kp_tick(&m->frame, now, 1)) return m->frame.next_us;
    struct kp_region prev = m->refs[(m->frames + m->nrefs - 1) % m->nrefs];
    struct kp_region cur = m->refs[m->frames % m->nrefs];
    rt->sink += kp_fill_read(rt, &m->input_pos, m->input_bytes);
    rt->sink += kp_region_read(rt, prev, 0, m->ref_bytes, 64);
    kp_region_write_all(rt, cur);
    for (uint64_t i = 0; i < m->heap_writes; i++) kp_region_write_page(rt, m->heap, kp_rand_below(&m->rng, m->heap.pages));
    kp_region_write_all(rt, m->fb);
    kp_region_write_all(rt, m->ximage);
    m->frames++;
    kp_progress(rt, 1);
    KP_TICKER_SCHEDULE(rt, &m->frame);
    return m->frame.next_us;
}

void kp_run_movie(struct kp_rt *rt)
{
    struct movie m;
    kp_memset(&m, 0, sizeof m);
    uint64_t width = kp_param(rt, 0, 1280), height = kp_param(rt, 1, 720);
    uint64_t frame_us = kp_param(rt, 2, 40000);
    m.nrefs = kp_param(rt, 3, 11);
    uint64_t bitrate = kp_param(rt, 4, 4000000);
    uint64_t heap_bytes = kp_param(rt, 5, 3000 * KP_PAGE_SIZE);
    m.heap_writes = kp_param(rt, 6, 600);
    m.rng = kp_mix64(rt->seed ^ 0x30F1EULL);
    if (m.nrefs > MAX_REFS) kp_fail(rt, KP_EXIT_BAD_WORKLOAD, "movie: params[3] (reference frames) must be 1..16");
    if (width > 16384 || height > 16384) kp_fail(rt, KP_EXIT_BAD_WORKLOAD, "movie: params[0..1] (frame size) must be at most 16384 x 16384");
    if (rt->fill_pages == 0)
        kp_fail(rt, KP_EXIT_NO_MEMORY, "movie reads its compressed input from the filled heap: set fill_bytes > 0");
    uint64_t fb_bytes = width * height * 4;
    m.ref_bytes = width * height * 3 / 2;      /* YUV 4:2:0: 12 bits per pixel */
    m.input_bytes = bitrate * frame_us / 8000000;
    uint64_t fb_pages = (fb_bytes + KP_PAGE_SIZE - 1) / KP_PAGE_SIZE, ref_pages = (m.ref_bytes + KP_PAGE_SIZE - 1) / KP_PAGE_SIZE;

    uint64_t heap_pages = (heap_bytes + KP_PAGE_SIZE - 1) / KP_PAGE_SIZE;
    kp_work_reserve(rt, 2 * fb_pages + m.nrefs * ref_pages + heap_pages, "movie");
    m.fb = kp_region_alloc(rt, fb_bytes);
    m.ximage = kp_region_alloc(rt, fb_bytes);
    m.heap = kp_region_alloc(rt, heap_bytes);
    for (uint64_t i = 0; i < m.nrefs; i++) m.refs[i] = kp_region_alloc(rt, m.ref_bytes);
    kp_region_write_all(rt, m.fb);
    kp_region_write_all(rt, m.ximage);
    kp_region_write_all(rt, m.heap);
    for (uint64_t i = 0; i < m.nrefs; i++) kp_region_write_all(rt, m.refs[i]);
    kp_ticker_start(&m.frame, kp_clock_us(rt), frame_us);
    KP_TICKER_SCHEDULE(rt, &m.frame);
    kp_loop(rt, movie_step, &m);
}
