/*
 * ticker.h — a periodic event on the guest clock, scheduled on absolute deadlines (next += period)
 * so the rate does not drift. When the guest falls behind (paused by the VMM, slow exits), at most
 * keep overdue ticks are run; older ones are dropped and counted, as a real player drops late
 * video frames or loses audio periods on an underrun.
 */
#ifndef KP_TICKER_H
#define KP_TICKER_H

#include <stdint.h>

struct kp_ticker {
    uint64_t next_us;
    uint64_t period_us;
    uint64_t missed;
};

static inline void kp_ticker_start(struct kp_ticker *t, uint64_t first_us, uint64_t period_us)
{
    t->next_us = first_us;
    t->period_us = period_us ? period_us : 1;
    t->missed = 0;
}

/* 1 if a tick is due at now (and consumes it), 0 otherwise. keep >= 1. */
static inline int kp_tick(struct kp_ticker *t, uint64_t now, uint64_t keep)
{
    if (now < t->next_us) return 0;
    uint64_t due = (now - t->next_us) / t->period_us + 1;
    if (due > keep) {
        t->missed += due - keep;
        t->next_us += (due - keep) * t->period_us;
    }
    t->next_us += t->period_us;
    return 1;
}

/* A ticker as a paced workload's schedule (kp_schedule): the next tick is due at next_us, every dropped tick lost a
 * period. Needs rt.h. */
#define KP_TICKER_SCHEDULE(rt, t) kp_schedule((rt), (t)->next_us, (t)->missed * (t)->period_us)

#endif
