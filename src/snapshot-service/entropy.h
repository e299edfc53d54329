/* Restored's reseed: the host's bytes into the kernel's pool
 * (RNDADDENTROPY), then a reseed of the CRNG from it (RNDRESEEDCRNG), so
 * that clones of one snapshot draw different numbers from here on. The
 * system calls go through ops, so that a unit test sees exactly what the
 * kernel would have been given (its pool cannot be read back). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SNAP_ENTROPY_MIN 32
#define SNAP_ENTROPY_MAX 4096

struct snap_entropy_ops {
	int (*open)(const char *path, int flags, void *userdata);
	int (*ioctl)(int fd, unsigned long request, void *arg, void *userdata);
	int (*close)(int fd, void *userdata);
	void *userdata;
};

/* The kernel's: open(2), ioctl(2), close(2). */
void snap_entropy_ops_kernel(struct snap_entropy_ops *ops);

/* Adds len bytes (SNAP_ENTROPY_MIN..SNAP_ENTROPY_MAX, checked by the
 * caller), credited as 8 bits each, then reseeds. -errno of the step that
 * failed, with *ret_step naming it ("open /dev/urandom", "RNDADDENTROPY",
 * "RNDRESEEDCRNG"). */
int snap_entropy_add(const struct snap_entropy_ops *ops, const uint8_t *bytes, size_t len, const char **ret_step);
