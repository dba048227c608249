/*
 * main.c — boot sequence: validate boot info, initial fill (with heartbeats), then the workload
 * named by boot_info.workload. The workload sets up its regions, then kp_loop reports READY and
 * runs it until the VMM stops the guest (or params[KP_PARAM_STOP_MS] elapse).
 */
#include "rt.h"

void kp_guest_main(uintptr_t mem_base, void *host, uint64_t image_end)
{
    struct kp_rt rt;
    kp_memset(&rt, 0, sizeof rt);
    rt.mem_base = mem_base;
    rt.host = host;
    rt.boot = kp_gpa(&rt, KP_BOOT_INFO_GPA);
    rt.stop_at_us = KP_NEVER;

    kp_boot_validate(&rt, image_end);
    rt.hb_next_us = kp_clock_us(&rt) + rt.hb_period_us;
    kp_fill(&rt);

    switch (rt.workload) {
    case KP_WORKLOAD_IDLE: kp_run_idle(&rt);
    case KP_WORKLOAD_TEXT: kp_run_text(&rt);
    case KP_WORKLOAD_AUDIO: kp_run_audio(&rt);
    case KP_WORKLOAD_MOVIE: kp_run_movie(&rt);
    case KP_WORKLOAD_PATTERN: kp_run_pattern(&rt);
    case KP_WORKLOAD_DATABASE: kp_run_database(&rt);
    default: kp_run_replay(&rt);    /* kp_boot_validate rejected anything else */
    }
}
