#include "fs-probe.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/macro.h"

struct signature {
	const char *name;
	uint64_t offset;
	const char *magic;
	size_t len;
};

/* Offsets from the start of the device (as blkid's probes have them). */
static const struct signature signatures[] = {
	{ "ext2/3/4", 1024 + 0x38, "\x53\xef", 2 },
	{ "btrfs", 65536 + 0x40, "_BHRfS_M", 8 },
	{ "xfs", 0, "XFSB", 4 },
	{ "f2fs", 1024, "\x10\x20\xf5\xf2", 4 },
	{ "squashfs", 0, "hsqs", 4 },
	{ "LUKS", 0, "LUKS\xba\xbe", 6 },
	{ "iso9660", 32769, "CD001", 5 },
	{ "swap", 4096 - 10, "SWAPSPACE2", 10 },
	{ "swap", 4096 - 10, "SWAP-SPACE", 10 },
	{ "LVM2", 512 + 0x18, "LVM2 001", 8 },
	{ "GPT", 512, "EFI PART", 8 },
	{ "vfat", 0x52, "FAT32   ", 8 },
	{ "vfat", 0x36, "FAT1", 4 },
	{ "MBR/boot sector", 510, "\x55\xaa", 2 },
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

int fs_probe(int fd, uint64_t size, const char **ret_what)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t head = (size_t)MIN(size, (uint64_t)FS_PROBE_SPAN);
	int r;

	buf = malloc(FS_PROBE_SPAN);
	if (!buf)
		return -ENOMEM;
	r = read_full(fd, buf, head, 0);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(signatures); i++) {
		const struct signature *s = &signatures[i];
		if (s->offset + s->len <= head && memcmp(buf + s->offset, s->magic, s->len) == 0) {
			*ret_what = s->name;
			return 1;
		}
	}
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
	*ret_what = NULL;
	return 0;
}
