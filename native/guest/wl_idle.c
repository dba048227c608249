/* wl_idle.c — workload 0: nothing but heartbeats; the guest pace-sleeps between them. */
#include "rt.h"

void kp_run_idle(struct kp_rt *rt) { kp_loop(rt, 0, 0); }
