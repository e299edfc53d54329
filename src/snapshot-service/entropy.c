#include "entropy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/macro.h"

static int k_open(const char *path, int flags, void *userdata)
{
	int fd = open(path, flags);
	return fd < 0 ? -errno : fd;
}

static int k_ioctl(int fd, unsigned long request, void *arg, void *userdata)
{
	return ioctl(fd, request, arg) < 0 ? -errno : 0;
}

static int k_close(int fd, void *userdata)
{
	return close(fd) < 0 ? -errno : 0;
}

void snap_entropy_ops_kernel(struct snap_entropy_ops *ops)
{
	*ops = (struct snap_entropy_ops){ .open = k_open, .ioctl = k_ioctl, .close = k_close };
}

int snap_entropy_add(const struct snap_entropy_ops *ops, const uint8_t *bytes, size_t len, const char **ret_step)
{
	/* struct rand_pool_info ends in a flexible array: the bytes follow
	 * the two counts. Bounded by SNAP_ENTROPY_MAX: on the stack. */
	union {
		struct rand_pool_info info;
		uint8_t raw[sizeof(struct rand_pool_info) + SNAP_ENTROPY_MAX];
	} u;
	int fd, r;

	if (len < SNAP_ENTROPY_MIN || len > SNAP_ENTROPY_MAX)
		return -EINVAL;
	u.info.entropy_count = (int)(len * 8);
	u.info.buf_size = (int)len;
	memcpy(u.info.buf, bytes, len);
	fd = ops->open("/dev/urandom", O_WRONLY | O_CLOEXEC, ops->userdata);
	if (fd < 0) {
		*ret_step = "open /dev/urandom";
		return fd;
	}
	r = ops->ioctl(fd, RNDADDENTROPY, &u.info, ops->userdata);
	if (r < 0)
		*ret_step = "RNDADDENTROPY";
	else {
		r = ops->ioctl(fd, RNDRESEEDCRNG, NULL, ops->userdata);
		if (r < 0)
			*ret_step = "RNDRESEEDCRNG";
	}
	(void)ops->close(fd, ops->userdata);
	/* The host's bytes are secret: no copy stays on the stack. */
	explicit_bzero(&u, sizeof(u));
	return r;
}
