/* Sockets for the migration sender: one gather sendmsg straight from guest memory (no copy in user space),
 * MSG_ZEROCOPY (the kernel pins the pages instead of copying them) and reaping of its completions from the
 * socket error queue. See Documentation/networking/msg_zerocopy.rst in the kernel tree.
 *
 * Completion notifications: every successful zero-copy sendmsg (one that sent > 0 bytes) takes the next
 * 32-bit sequence number of the socket, starting at 0. The kernel reports finished sends as ranges
 * [ee_info, ee_data] of those numbers (adjacent ranges are merged while queued), with
 * SO_EE_CODE_ZEROCOPY_COPIED in ee_code when it had to copy after all (loopback, a device without
 * scatter-gather). A merged range carries the code of its first part, so copied_sends is a lower bound
 * when copied and zero-copied sends interleave. */
#define _GNU_SOURCE
#include <stddef.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <linux/errqueue.h>
#include "common.h"
#include "kvmpresync.h"

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif

/* kp_iovec is handed to the kernel as struct iovec without conversion. */
_Static_assert(sizeof(struct kp_iovec) == sizeof(struct iovec), "kp_iovec must match struct iovec");
_Static_assert(offsetof(struct kp_iovec, base) == offsetof(struct iovec, iov_base), "kp_iovec.base");
_Static_assert(offsetof(struct kp_iovec, len) == offsetof(struct iovec, iov_len), "kp_iovec.len");
_Static_assert(sizeof(void *) == sizeof(uint64_t) && sizeof(size_t) == sizeof(uint64_t), "LP64 only");
_Static_assert(KP_POLL_IN == POLLIN && KP_POLL_OUT == POLLOUT && KP_POLL_ERR == POLLERR && KP_POLL_HUP == POLLHUP,
               "KP_POLL_* are the Linux poll bits");

int32_t kp_sock_enable_zerocopy(int32_t fd)
{
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) < 0 ? -errno : 0;
}

int64_t kp_sock_sendmsg(int32_t fd, const struct kp_iovec *iov, uint32_t iovcnt, uint32_t flags)
{
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = (struct iovec *)(uintptr_t)iov; /* same layout (asserted above); the kernel only reads it */
    msg.msg_iovlen = iovcnt;
    int mflags = MSG_NOSIGNAL; /* a closed peer is -EPIPE, never SIGPIPE */
    if (flags & KP_SEND_ZEROCOPY)
        mflags |= MSG_ZEROCOPY;
    if (flags & KP_SEND_MORE)
        mflags |= MSG_MORE;
    if (flags & KP_SEND_DONTWAIT)
        mflags |= MSG_DONTWAIT;
    ssize_t ret;
    do {
        ret = sendmsg(fd, &msg, mflags);
    } while (ret < 0 && errno == EINTR);
    return ret < 0 ? -errno : (int64_t)ret;
}

/* Folds one error-queue message into *out; returns 1 when it was a zero-copy notification. */
static int kp_zc_account(struct msghdr *msg, struct kp_zc_stats *out)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
        int ip = (c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                 (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR);
        if (!ip || c->cmsg_len < CMSG_LEN(sizeof(struct sock_extended_err)))
            continue;
        struct sock_extended_err ee;
        memcpy(&ee, CMSG_DATA(c), sizeof(ee));
        if (ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee.ee_errno != 0)
            continue;
        uint64_t sends = (uint64_t)(uint32_t)(ee.ee_data - ee.ee_info) + 1; /* wraps with the 32-bit counter */
        out->completed_lo_hi_ranges++;
        out->completed_sends += sends;
        if (ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED)
            out->copied_sends += sends;
        out->last_hi = ee.ee_data;
        return 1;
    }
    return 0;
}

int32_t kp_sock_reap_zerocopy(int32_t fd, struct kp_zc_stats *out)
{
    int32_t notifications = 0;
    for (;;) {
        /* An sock_extended_err plus the offender's address fits easily. */
        union {
            char buf[CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in6))];
            struct cmsghdr align;
        } control;
        struct msghdr msg;
        memset(&msg, 0, sizeof(msg));
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof(control.buf);
        ssize_t ret = recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
        if (ret < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return notifications;
            /* Report what was already accumulated; the error shows again on the next call. */
            return notifications > 0 ? notifications : -errno;
        }
        notifications += kp_zc_account(&msg, out);
    }
}

int32_t kp_sock_poll(int32_t fd, uint32_t events, int32_t timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = (short)events, .revents = 0 };
    int ret;
    do {
        ret = poll(&p, 1, timeout_ms);
    } while (ret < 0 && errno == EINTR);
    if (ret < 0)
        return -errno;
    return ret == 0 ? 0 : (int32_t)(uint16_t)p.revents;
}
