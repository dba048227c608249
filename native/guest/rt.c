/*
 * rt.c — clock, pacing, progress, console, exit and the main loop every workload runs in.
 * Every mailbox field is stored before the OUT that tells the VMM to read it (port.h clobbers memory).
 */
#include "rt.h"

uint64_t kp_clock_us(struct kp_rt *rt)
{
    uint64_t lo = kp_in32(rt, KP_PORT_CLOCK_LO);   /* latches the clock */
    uint64_t hi = kp_in32(rt, KP_PORT_CLOCK_HI);
    return (hi << 32) | lo;
}

void kp_pace(struct kp_rt *rt, uint64_t deadline_us)
{
    rt->boot->mailbox.pace_deadline_us = deadline_us;
    kp_out32(rt, KP_PORT_PACE, (uint32_t)deadline_us);
}

void kp_yield(struct kp_rt *rt) { kp_pace(rt, 0); }

void kp_progress(struct kp_rt *rt, uint32_t units)
{
    if (!units) return;
    rt->progress_total += units;
    rt->boot->mailbox.progress_total = rt->progress_total;
    kp_out32(rt, KP_PORT_PROGRESS, units);
}

void kp_schedule(struct kp_rt *rt, uint64_t due_us, uint64_t lost_us)
{
    rt->boot->mailbox.sched_due_us = due_us;
    rt->boot->mailbox.sched_lost_us = lost_us;
}

void kp_ready(struct kp_rt *rt, uint64_t pages) { kp_out32(rt, KP_PORT_READY, (uint32_t)pages); }

void kp_exit(struct kp_rt *rt, uint32_t code)
{
    for (;;) {
        kp_out32(rt, KP_PORT_EXIT, code);
#ifndef KP_HOSTED
        /* A VMM that resumes us after EXIT finds us halted (CPL 0) or gets EXIT again (CPL 3,
         * where hlt would fault). */
        uint16_t cs;
        __asm__ volatile("mov %%cs, %0" : "=r"(cs));
        if ((cs & 3) == 0) __asm__ volatile("hlt" ::: "memory");
#endif
    }
}

void kp_puts(struct kp_rt *rt, const char *s)
{
    while (*s) kp_out32(rt, KP_PORT_CONSOLE, (uint8_t)*s++);
}

void kp_put_dec(struct kp_rt *rt, uint64_t v)
{
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    kp_puts(rt, buf + i);
}

void kp_put_hex(struct kp_rt *rt, uint64_t v)
{
    char buf[19];
    int i = 18;
    buf[i] = 0;
    do { buf[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    buf[--i] = 'x';
    buf[--i] = '0';
    kp_puts(rt, buf + i);
}

void kp_fail(struct kp_rt *rt, uint32_t code, const char *what)
{
    kp_puts(rt, "kp-guest: ");
    kp_puts(rt, what);
    kp_puts(rt, "\n");
    kp_exit(rt, code);
}

void *kp_memset(void *dst, int c, size_t n)
{
    unsigned char *p = dst;
    while (n--) *p++ = (unsigned char)c;
    return dst;
}

void kp_loop(struct kp_rt *rt, kp_step_fn step, void *ctx)
{
    kp_ready(rt, rt->fill_data_pages);
    uint64_t stop_ms = kp_param(rt, KP_PARAM_STOP_MS, 0);
    if (stop_ms) rt->stop_at_us = kp_clock_us(rt) + stop_ms * 1000;
    for (;;) {
        uint64_t now = kp_clock_us(rt);
        if (now >= rt->stop_at_us) {
            kp_puts(rt, "kp-guest: stop time reached, progress ");
            kp_put_dec(rt, rt->progress_total);
            kp_puts(rt, ", heartbeat errors ");
            kp_put_dec(rt, rt->hb_errors);
            kp_puts(rt, "\n");
            kp_exit(rt, KP_EXIT_OK);
        }
        if (now >= rt->hb_next_us) {
            kp_heartbeat(rt);
            rt->hb_next_us += rt->hb_period_us;
            if (rt->hb_next_us <= now)                 /* after a long pause: no burst of heartbeats */
                rt->hb_next_us = now + rt->hb_period_us;
        }
        uint64_t next = step ? step(rt, ctx, now) : KP_NEVER;
        if (rt->hb_next_us < next) next = rt->hb_next_us;
        if (rt->stop_at_us < next) next = rt->stop_at_us;
        if (next > now) kp_pace(rt, next);  /* the VMM returns at once if the clock already passed it */
    }
}
