/*
 * wl_audio.c — workload 2: audio playback. Every period (20 ms) the decoder reads its compressed
 * input sequentially from the filled heap (read-only), reads its whole working set, rewrites the
 * hot part of it (synthesis / overlap buffers), and writes one period of PCM into the ring buffer
 * the sound device plays from. Every refill interval (200 ms) the player also runs its filter chain
 * and refills its own output buffer (mpv: audio-buffer 0.2 s), rewriting those buffers. Defaults fitted
 * to mpv playing an MP3 (tests/data/traces/apps/audio-mpv.kptrace). progress = periods; schedule (kp_schedule) = the
 * period ticker (a period lost to an underrun loses its 20 ms).
 * Parameters: docs/WORKLOADS.md.
 */
#include "rt.h"
#include "ticker.h"

struct audio {
    struct kp_region ring, state, refill;
    struct kp_ticker period, refill_tick;
    uint64_t period_bytes, ring_bytes, state_bytes, hot_bytes, input_bytes;
    uint64_t ring_pos, input_pos, keep;
};

static uint64_t audio_step(struct kp_rt *rt, void *ctx, uint64_t now)
{
    struct audio *a = ctx;
    uint32_t periods = 0;
    while (kp_tick(&a->period, now, a->keep)) {
        rt->sink += kp_fill_read(rt, &a->input_pos, a->input_bytes);
        rt->sink += kp_region_read(rt, a->state, 0, a->state_bytes, 64);
        kp_region_write_bytes(rt, a->state, 0, a->hot_bytes);
        kp_region_write_bytes(rt, a->ring, a->ring_pos, a->period_bytes);
        a->ring_pos = (a->ring_pos + a->period_bytes) % a->ring_bytes;
        periods++;
    }
    if (kp_tick(&a->refill_tick, now, 1)) kp_region_write_all(rt, a->refill);
    kp_progress(rt, periods);
    KP_TICKER_SCHEDULE(rt, &a->period);
    return a->period.next_us < a->refill_tick.next_us ? a->period.next_us : a->refill_tick.next_us;
}

void kp_run_audio(struct kp_rt *rt)
{
    struct audio a;
    kp_memset(&a, 0, sizeof a);
    uint64_t rate = kp_param(rt, 0, 44100), channels = kp_param(rt, 1, 2), sample_bytes = kp_param(rt, 2, 2);
    uint64_t period_us = kp_param(rt, 3, 20000);
    a.ring_bytes = kp_param(rt, 4, 64 << 10);
    a.state_bytes = kp_param(rt, 5, 720 << 10);
    a.hot_bytes = kp_param(rt, 6, 720 << 10);
    uint64_t bitrate = kp_param(rt, 7, 128000);
    uint64_t refill_us = kp_param(rt, 8, 200) * 1000, refill_bytes = kp_param(rt, 9, 1040 << 10);
    a.period_bytes = rate * channels * sample_bytes * period_us / 1000000;
    a.input_bytes = bitrate * period_us / 8000000;
    if (a.hot_bytes > a.state_bytes) a.hot_bytes = a.state_bytes;
    if (a.period_bytes == 0 || a.period_bytes > a.ring_bytes)
        kp_fail(rt, KP_EXIT_BAD_WORKLOAD, "audio: one period (params 0-3) must be 1 byte .. ring size (params[4])");
    if (rt->fill_pages == 0)
        kp_fail(rt, KP_EXIT_NO_MEMORY, "audio reads its compressed input from the filled heap: set fill_bytes > 0");
    /* a real player keeps the ring full, so after a stall it may catch up one ring's worth of periods */
    a.keep = a.ring_bytes / a.period_bytes;

    kp_work_reserve(rt, (a.ring_bytes + KP_PAGE_SIZE - 1) / KP_PAGE_SIZE + (a.state_bytes + KP_PAGE_SIZE - 1) / KP_PAGE_SIZE
                        + (refill_bytes + KP_PAGE_SIZE - 1) / KP_PAGE_SIZE, "audio");
    a.ring = kp_region_alloc(rt, a.ring_bytes);
    a.state = kp_region_alloc(rt, a.state_bytes);
    a.refill = kp_region_alloc(rt, refill_bytes);
    kp_region_write_all(rt, a.ring);    /* snd_pcm_prepare: silence in the ring */
    kp_region_write_all(rt, a.state);   /* decoder initialised */
    kp_region_write_all(rt, a.refill);  /* filter chain and output buffer set up */
    kp_ticker_start(&a.period, kp_clock_us(rt), period_us);
    kp_ticker_start(&a.refill_tick, kp_clock_us(rt) + refill_us, refill_us);
    KP_TICKER_SCHEDULE(rt, &a.period);
    kp_loop(rt, audio_step, &a);
}
