#include "fs-probe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/macro.h"

struct signature {
	const char *name;
	/* Bytes from the start of the device, or, with from_end, back from its
	 * end (after rounding the size down to end_align bytes first). */
	uint64_t offset;
	bool from_end;
	uint64_t end_align;
	const char *magic;
	size_t len;
};

#define AT(o) .offset = (o)
#define END(o, a) .offset = (o), .from_end = true, .end_align = (a)
#define MAGIC(m) .magic = (m), .len = sizeof(m) - 1

/* The superblocks and labels of util-linux's libblkid probes (the same
 * offsets and magic numbers), for what a guest disk may hold: filesystems,
 * partition tables, LUKS, LVM, swap, RAID, caches. The first match names
 * the content in the error; the order puts specific ones before the MBR's
 * 0x55AA, which many of them also carry. */
static const struct signature signatures[] = {
	{ "ext2/3/4", AT(1024 + 0x38), MAGIC("\x53\xef") },
	{ "btrfs", AT(65536 + 0x40), MAGIC("_BHRfS_M") },
	{ "btrfs", AT((64ull << 20) + 0x40), MAGIC("_BHRfS_M") }, /* first backup superblock */
	{ "xfs", AT(0), MAGIC("XFSB") },
	{ "f2fs", AT(1024), MAGIC("\x10\x20\xf5\xf2") },
	{ "erofs", AT(1024), MAGIC("\xe2\xe1\xf5\xe0") },
	{ "squashfs", AT(0), MAGIC("hsqs") },
	{ "LUKS", AT(0), MAGIC("LUKS\xba\xbe") },
	{ "LUKS", AT(16384), MAGIC("SKUL\xba\xbe") }, /* LUKS2's second header */
	{ "iso9660", AT(32769), MAGIC("CD001") },
	{ "udf", AT(32769), MAGIC("BEA01") },
	{ "jfs", AT(32768), MAGIC("JFS1") },
	{ "reiserfs", AT(65536 + 52), MAGIC("ReIsEr") },
	{ "nilfs2", AT(1024 + 6), MAGIC("\x34\x34") },
	{ "ntfs", AT(3), MAGIC("NTFS    ") },
	{ "exfat", AT(3), MAGIC("EXFAT   ") },
	/* Swap's signature ends its first page, whatever the page size. */
	{ "swap", AT(4096 - 10), MAGIC("SWAPSPACE2") },
	{ "swap", AT(4096 - 10), MAGIC("SWAP-SPACE") },
	{ "swap", AT(8192 - 10), MAGIC("SWAPSPACE2") },
	{ "swap", AT(16384 - 10), MAGIC("SWAPSPACE2") },
	{ "swap", AT(65536 - 10), MAGIC("SWAPSPACE2") },
	/* LVM2's label may be in any of the first four sectors. */
	{ "LVM2", AT(0), MAGIC("LABELONE") },
	{ "LVM2", AT(512), MAGIC("LABELONE") },
	{ "LVM2", AT(1024), MAGIC("LABELONE") },
	{ "LVM2", AT(1536), MAGIC("LABELONE") },
	/* Linux md: v1.1 at 0, v1.2 at 4 KiB, v1.0 8 KiB before the end
	 * (4 KiB-aligned), v0.90 64 KiB before the end (64 KiB-aligned). */
	{ "Linux RAID (md)", AT(0), MAGIC("\xfc\x4e\x2b\xa9") },
	{ "Linux RAID (md)", AT(4096), MAGIC("\xfc\x4e\x2b\xa9") },
	{ "Linux RAID (md)", END(8192, 4096), MAGIC("\xfc\x4e\x2b\xa9") },
	{ "Linux RAID (md)", END(65536, 65536), MAGIC("\xfc\x4e\x2b\xa9") },
	{ "bcache", AT(4096 + 24), MAGIC("\xc6\x85\x73\xf6\x4e\x1a\x45\xca\x82\x65\xf5\x7f\x48\xba\x6d\x81") },
	{ "ZFS", AT((128 << 10) + 0), MAGIC("\x0c\xb1\xba\x00\x00\x00\x00\x00") }, /* first uberblock */
	{ "GPT", AT(512), MAGIC("EFI PART") },
	{ "GPT", AT(4096), MAGIC("EFI PART") }, /* 4 KiB sectors */
	{ "GPT", END(512, 512), MAGIC("EFI PART") }, /* the backup header */
	{ "vfat", AT(0x52), MAGIC("FAT32   ") },
	{ "vfat", AT(0x36), MAGIC("FAT1") },
	{ "MBR/boot sector", AT(510), MAGIC("\x55\xaa") },
};

static int read_full(int fd, void *buf, size_t len, uint64_t off)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* shorter than it said */
		done += (size_t)n;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* 1 and the name when a signature is there, 0 when none, -errno. head
 * holds the device's first head_len bytes; others are read. */
static int find_signature(int fd, uint64_t size, const uint8_t *head, size_t head_len, const char **ret_what)
{
	for (size_t i = 0; i < ARRAY_SIZE(signatures); i++) {
		const struct signature *s = &signatures[i];
		uint64_t off = s->offset;
		uint8_t magic[32];

		if (s->from_end) {
			uint64_t end = size / s->end_align * s->end_align;
			if (end < s->offset)
				continue;
			off = end - s->offset;
		}
		if (off + s->len > size)
			continue;
		if (off + s->len <= head_len) {
			if (memcmp(head + off, s->magic, s->len) != 0)
				continue;
		} else {
			int r = read_full(fd, magic, s->len, off);
			if (r < 0)
				return r;
			if (memcmp(magic, s->magic, s->len) != 0)
				continue;
		}
		*ret_what = s->name;
		return 1;
	}
	return 0;
}

int fs_probe(int fd, uint64_t size, const char **ret_what)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t head = (size_t)MIN(size, (uint64_t)FS_PROBE_SPAN);
	int r;

	buf = malloc(FS_PROBE_SPAN);
	if (!buf)
		return -ENOMEM;
	/* Samples are scattered: no read-ahead of 128 KiB after each. */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	r = read_full(fd, buf, head, 0);
	if (r < 0)
		return r;
	r = find_signature(fd, size, buf, head, ret_what);
	if (r != 0)
		return r;
	if (!all_zero(buf, head)) {
		*ret_what = "non-zero data";
		return 1;
	}
	/* Some metadata lives at the end (md 0.90/1.0, GPT's backup). */
	if (size > head) {
		size_t tail = (size_t)MIN(size - head, (uint64_t)FS_PROBE_SPAN);
		r = read_full(fd, buf, tail, size - tail);
		if (r < 0)
			return r;
		if (!all_zero(buf, tail)) {
			*ret_what = "non-zero data";
			return 1;
		}
	}
	/* Data in between: one block every MiB, or FS_PROBE_SAMPLES blocks
	 * evenly spread over a larger device, so the time is bounded. */
	uint64_t step = MAX((uint64_t)FS_PROBE_SPAN, size / FS_PROBE_SAMPLES);
	step = (step + FS_PROBE_BLOCK - 1) / FS_PROBE_BLOCK * FS_PROBE_BLOCK;
	for (uint64_t off = FS_PROBE_SPAN; size >= FS_PROBE_SPAN && off + FS_PROBE_BLOCK <= size - FS_PROBE_SPAN;
	     off += step) {
		r = read_full(fd, buf, FS_PROBE_BLOCK, off);
		if (r < 0)
			return r;
		if (!all_zero(buf, FS_PROBE_BLOCK)) {
			*ret_what = "non-zero data";
			return 1;
		}
	}
	*ret_what = NULL;
	return 0;
}
