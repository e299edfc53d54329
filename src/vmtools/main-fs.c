/* Sizes come from the filesystems themselves (the ext4 superblock, btrfs's
 * device info), not from statfs, whose block count leaves out ext4's
 * metadata: ResizeFilesystem compares them with what the host asks. */
#include "main-fs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "base/macro.h"
#include "base/parse.h"

#define EXT4_MAGIC 0xEF53
#define BTRFS_MAGIC 0x9123683E

/* The last entry for path wins: it is the one on top. */
static int find_mount(const char *path, struct main_fs_info *info)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	int found = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *mnt = NULL, *tok;
		int field = 0;
		bool after_dash = false;
		int k = 0;
		for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save), field++) {
			if (field == 4)
				mnt = tok;
			else if (!after_dash && strcmp(tok, "-") == 0)
				after_dash = true;
			else if (after_dash && k == 0) {
				k++;
				if (mnt) {
					unescape_octal(mnt);
					if (strcmp(mnt, path) != 0)
						break;
				}
				snprintf(info->fstype, sizeof(info->fstype), "%s", tok);
			} else if (after_dash && k == 1) {
				unescape_octal(tok);
				snprintf(info->source, sizeof(info->source), "%s", tok);
				found = 0;
				break;
			}
		}
	}
	return found;
}

static int device_size(const char *dev, uint64_t *ret)
{
	_cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || ioctl(fd, BLKGETSIZE64, ret) < 0)
		return -errno;
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The block count in the superblock as the kernel keeps it: reads of the
 * block device go through the same page cache as ext4's superblock buffer,
 * so a finished online resize is visible at once. */
static int ext4_size(const char *dev, uint64_t *ret_size, uint64_t *ret_bsize)
{
	_cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
	uint8_t sb[1024];
	uint64_t blocks;
	uint32_t log;

	if (fd < 0)
		return -errno;
	if (pread(fd, sb, sizeof(sb), 1024) != (ssize_t)sizeof(sb))
		return -EIO;
	if (sb[0x38] != 0x53 || sb[0x39] != 0xef)
		return -EUCLEAN;
	log = le32(sb + 0x18);
	if (log > 6)
		return -EUCLEAN;
	blocks = le32(sb + 0x04);
	if (le32(sb + 0x60) & 0x80) /* INCOMPAT_64BIT */
		blocks |= (uint64_t)le32(sb + 0x150) << 32;
	*ret_bsize = 1024u << log;
	*ret_size = blocks * *ret_bsize;
	return 0;
}

static int btrfs_size(const char *path, struct main_fs_info *info)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct btrfs_ioctl_fs_info_args fi = { 0 };
	struct btrfs_ioctl_dev_info_args di = { .devid = 1 };

	if (fd < 0)
		return -errno;
	if (ioctl(fd, BTRFS_IOC_FS_INFO, &fi) < 0)
		return -errno;
	/* Resizing means one device: several need per-device sizes. */
	if (fi.num_devices != 1)
		return -EXDEV;
	if (ioctl(fd, BTRFS_IOC_DEV_INFO, &di) < 0)
		return -errno;
	info->size = di.total_bytes;
	info->block_size = fi.sectorsize;
	return device_size((const char *)di.path, &info->device_size);
}

int main_fs_probe(const char *path, struct main_fs_info *info)
{
	struct statfs st;
	int r;

	*info = (struct main_fs_info){ 0 };
	r = find_mount(path, info);
	if (r < 0)
		return r;
	if (statfs(path, &st) < 0)
		return -errno;
	info->used = (uint64_t)(st.f_blocks - st.f_bfree) * (uint64_t)st.f_bsize;
	if (st.f_type == EXT4_MAGIC && strcmp(info->fstype, "ext4") == 0) {
		info->kind = MAIN_FS_EXT4;
		r = ext4_size(info->source, &info->size, &info->block_size);
		if (r < 0)
			return r;
		return device_size(info->source, &info->device_size);
	}
	if (st.f_type == BTRFS_MAGIC) {
		info->kind = MAIN_FS_BTRFS;
		return btrfs_size(path, info);
	}
	return 0;
}

int main_fs_from_cmdline(const char *cmdline, char *ret, size_t len)
{
	static const char key[] = "maitred.main_fs=";
	int r = -ENOENT;

	for (const char *p = cmdline; *p;) {
		size_t n;
		p += strspn(p, " \t\n");
		n = strcspn(p, " \t\n");
		if (n > sizeof(key) - 1 && strncmp(p, key, sizeof(key) - 1) == 0 && p[sizeof(key) - 1] == '/' &&
		    n - (sizeof(key) - 1) < len) {
			snprintf(ret, len, "%.*s", (int)(n - (sizeof(key) - 1)), p + sizeof(key) - 1);
			r = 0;
		}
		p += n;
	}
	return r;
}
