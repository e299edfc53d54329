/* Is a block device blank? Used before mkfs_if_needed formats anything: a
 * device is blank only when no known signature is found (filesystems,
 * partition tables, LUKS, LVM, swap, RAID: the offsets libblkid probes),
 * its first and last MiB are all zero bytes, and so is a 4 KiB block every
 * MiB in between (at most FS_PROBE_SAMPLES blocks, evenly spread over a
 * larger device). Known signatures are named for the error message; any
 * other non-zero byte counts as data just the same. Pure: reads the fd,
 * nothing else. */
#pragma once

#include <stdint.h>

#define FS_PROBE_SPAN (1024 * 1024)
#define FS_PROBE_BLOCK 4096
#define FS_PROBE_SAMPLES 1024

/* Returns 0 when blank, 1 when not (*ret_what: "ext2/3/4", "btrfs", ...,
 * or "non-zero data"), -errno when reading failed. size is the device's
 * size in bytes. */
int fs_probe(int fd, uint64_t size, const char **ret_what);
