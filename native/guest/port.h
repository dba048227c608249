/*
 * port.h — the guest's only way out: 32-bit port I/O.
 *
 * In the freestanding guest these are single IN/OUT instructions (each a VM exit). With
 * KP_HOSTED defined (the Linux development harness in hosted/), the same calls go to functions
 * the harness provides, so the workload code above this file is compiled unchanged.
 */
#ifndef KP_PORT_H
#define KP_PORT_H

#include <stdint.h>

struct kp_rt;

#ifdef KP_HOSTED
uint32_t kp_host_in32(struct kp_rt *rt, uint16_t port);
void kp_host_out32(struct kp_rt *rt, uint16_t port, uint32_t value);

static inline uint32_t kp_in32(struct kp_rt *rt, uint16_t port) { return kp_host_in32(rt, port); }
static inline void kp_out32(struct kp_rt *rt, uint16_t port, uint32_t value) { kp_host_out32(rt, port, value); }
#else
/* "memory" clobber: every store to the mailbox is done before the exit that makes the VMM read it. */
static inline uint32_t kp_in32(struct kp_rt *rt, uint16_t port)
{
    (void)rt;
    uint32_t value;
    __asm__ volatile("inl %w1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}

static inline void kp_out32(struct kp_rt *rt, uint16_t port, uint32_t value)
{
    (void)rt;
    __asm__ volatile("outl %0, %w1" : : "a"(value), "Nd"(port) : "memory");
}
#endif

#endif
