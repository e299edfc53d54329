/* Is a block device blank? Used before mkfs_if_needed formats anything: a
 * device is blank only when its first and last MiB are all zero bytes. Known
 * superblock signatures are named for the error message; any other non-zero
 * byte counts as data just the same. Pure: reads the fd, nothing else. */
#pragma once

#include <stdint.h>

#define FS_PROBE_SPAN (1024 * 1024)

/* Returns 0 when blank, 1 when not (*ret_what: "ext2/3/4", "btrfs", ...,
 * or "non-zero data"), -errno when reading failed. size is the device's
 * size in bytes. */
int fs_probe(int fd, uint64_t size, const char **ret_what);
