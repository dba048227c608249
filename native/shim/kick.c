/* Kicking a vCPU thread out of KVM_RUN: a no-op SIGUSR2 handler plus pthread_kill. The caller also
 * sets kvm_run.immediate_exit so a kick that lands before KVM_RUN is entered is not lost. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include "kvmpresync.h"

static void kp_kick_handler(int sig)
{
    (void)sig;
}

int32_t kp_kick_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kp_kick_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must return EINTR */
    return sigaction(SIGUSR2, &sa, NULL) < 0 ? -errno : 0;
}

uint64_t kp_thread_self(void)
{
    return (uint64_t)pthread_self();
}

int32_t kp_thread_kick(uint64_t thread)
{
    return -pthread_kill((pthread_t)thread, SIGUSR2);
}
