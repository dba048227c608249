/* Shared by the shim's files: ioctl with EINTR retry, -errno convention. */
#ifndef KP_SHIM_COMMON_H
#define KP_SHIM_COMMON_H
#include <errno.h>
#include <stdint.h>
#include <sys/ioctl.h>

static inline int32_t kp_ioctl(int32_t fd, unsigned long request, void *arg)
{
    int ret;
    do {
        ret = ioctl(fd, request, arg);
    } while (ret < 0 && errno == EINTR);
    return ret < 0 ? -errno : ret;
}

static inline int32_t kp_ioctl_val(int32_t fd, unsigned long request, unsigned long arg)
{
    int ret;
    do {
        ret = ioctl(fd, request, arg);
    } while (ret < 0 && errno == EINTR);
    return ret < 0 ? -errno : ret;
}
#endif
