/* "The main writable filesystem" of GetAvailableSpace and the resize
 * methods: what is mounted at a mount point, and its size. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct main_fs_info {
	char fstype[32];
	char source[256];
	uint64_t size;	      /* bytes, as the filesystem itself counts them */
	uint64_t block_size;  /* ext4: the resize unit */
	uint64_t device_size; /* bytes of the block device under it */
	uint64_t used;	      /* bytes in use (statfs) */
	int kind;	      /* MAIN_FS_* */
};

enum { MAIN_FS_OTHER, MAIN_FS_EXT4, MAIN_FS_BTRFS };

/* Fills info for the filesystem mounted at path (which must be a mount
 * point: -ENOENT when /proc/self/mountinfo has no such entry). For other
 * kinds than ext4 and btrfs only fstype and source are set. */
int main_fs_probe(const char *path, struct main_fs_info *info);
/* The kernel word: maitred.main_fs=PATH (last one wins); 0 and *ret when
 * found, -ENOENT otherwise. */
int main_fs_from_cmdline(const char *cmdline, char *ret, size_t len);
