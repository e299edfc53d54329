/* Which filesystems Freeze acts on, from /proc/self/mountinfo's text:
 * every writable one (superblock "rw") whose source is a block device
 * (not tmpfs, proc, sysfs, overlay, ...), each once however many times it
 * is mounted, at or below a given directory. Pure: the caller reads the
 * file and says what a block device is, so unit tests give both. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

struct snap_mount {
	char *path; /* the mount point, unescaped */
	dev_t dev;  /* mountinfo's major:minor: what fstat() of path must give */
};

/* 0 when source names a block device, with its device number (two mounts
 * of one device are one filesystem); -errno otherwise. */
typedef int (*snap_blockdev_fn)(const char *source, dev_t *ret_rdev, void *userdata);

/* The filesystems in the order Freeze freezes them: children before their
 * parents (deeper mount points first; among equals, later mounts first).
 * below is an absolute directory ("/" for all). -EINVAL for a line that
 * is not mountinfo, -ENOMEM; *ret is freed with snap_mounts_free(). */
int snap_mounts_select(const char *mountinfo, const char *below, snap_blockdev_fn is_block, void *userdata,
		       struct snap_mount **ret, size_t *ret_n);
void snap_mounts_free(struct snap_mount *m, size_t n);
