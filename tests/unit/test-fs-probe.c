/* The blank-device probe behind Mount's mkfs_if_needed, on file images: only
 * all-zero heads and tails are blank; signatures are named. */
#include <fcntl.h>

#include "vmtools/fs-probe.h"
#include "test.h"

#define IMAGE_SIZE (8u << 20)

static int image(void)
{
	char path[] = "/tmp/valet-probe-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0) {
		unlink(path);
		if (ftruncate(fd, IMAGE_SIZE) < 0) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static int probe_with(uint64_t off, const void *data, size_t len, const char **what)
{
	int fd = image(), r;
	if (fd < 0)
		return -errno;
	if (len && pwrite(fd, data, len, (off_t)off) != (ssize_t)len)
		r = -EIO;
	else
		r = fs_probe(fd, IMAGE_SIZE, what);
	close(fd);
	return r;
}

TEST(blank_image_is_blank)
{
	const char *what = "x";
	CHECK_EQ(probe_with(0, NULL, 0, &what), 0);
	CHECK(what == NULL);
}

TEST(signatures_are_named)
{
	const char *what = NULL;
	CHECK_EQ(probe_with(1024 + 0x38, "\x53\xef", 2, &what), 1);
	CHECK_STR(what, "ext2/3/4");
	CHECK_EQ(probe_with(65536 + 0x40, "_BHRfS_M", 8, &what), 1);
	CHECK_STR(what, "btrfs");
	CHECK_EQ(probe_with(0, "XFSB", 4, &what), 1);
	CHECK_STR(what, "xfs");
	CHECK_EQ(probe_with(4096 - 10, "SWAPSPACE2", 10, &what), 1);
	CHECK_STR(what, "swap");
	CHECK_EQ(probe_with(512, "EFI PART", 8, &what), 1);
	CHECK_STR(what, "GPT");
	CHECK_EQ(probe_with(0, "LUKS\xba\xbe", 6, &what), 1);
	CHECK_STR(what, "LUKS");
}

TEST(any_byte_of_data_is_not_blank)
{
	const char *what = NULL;
	/* One byte anywhere in the first MiB, or in the last. */
	CHECK_EQ(probe_with(0, "\x01", 1, &what), 1);
	CHECK_STR(what, "non-zero data");
	CHECK_EQ(probe_with(FS_PROBE_SPAN - 1, "\x01", 1, &what), 1);
	CHECK_EQ(probe_with(IMAGE_SIZE - 1, "\x80", 1, &what), 1);
	CHECK_EQ(probe_with(IMAGE_SIZE - FS_PROBE_SPAN, "x", 1, &what), 1);
	/* In the middle: a 4 KiB block every MiB is read (the head and tail
	 * alone let data 8 MiB into a device be formatted over); bytes between
	 * the samples are not seen. */
	CHECK_EQ(probe_with(IMAGE_SIZE / 2, "x", 1, &what), 1);
	CHECK_STR(what, "non-zero data");
	CHECK_EQ(probe_with(3 * FS_PROBE_SPAN + FS_PROBE_BLOCK - 1, "x", 1, &what), 1);
	CHECK_EQ(probe_with(3 * FS_PROBE_SPAN + FS_PROBE_BLOCK, "x", 1, &what), 0);
}

/* A sparse image of size bytes with data at off, probed. */
static int probe_sized(uint64_t size, uint64_t off, const void *data, size_t len, const char **what)
{
	char path[] = "/tmp/valet-probe-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC), r;
	if (fd < 0)
		return -errno;
	unlink(path);
	if (ftruncate(fd, (off_t)size) < 0 || (len && pwrite(fd, data, len, (off_t)off) != (ssize_t)len))
		r = -EIO;
	else
		r = fs_probe(fd, size, what);
	close(fd);
	return r;
}

TEST(a_large_device_is_sampled_evenly)
{
	const char *what = NULL;
	/* 64 GiB (sparse): FS_PROBE_SAMPLES blocks, 64 MiB apart. */
	uint64_t size = 64ull << 30, step = size / FS_PROBE_SAMPLES;
	CHECK_EQ(probe_sized(size, 0, NULL, 0, &what), 0);
	CHECK_EQ(probe_sized(size, FS_PROBE_SPAN + 700 * step + 5, "x", 1, &what), 1);
	CHECK_STR(what, "non-zero data");
	CHECK_EQ(probe_sized(size, FS_PROBE_SPAN + 700 * step + FS_PROBE_BLOCK, "x", 1, &what), 0);
}

TEST(more_signatures_are_named)
{
	const char *what = NULL;
	uint64_t size = 32u << 20;
	static const char md[] = "\xfc\x4e\x2b\xa9";
	for (uint64_t sector = 0; sector < 4; sector++) {
		CHECK_EQ(probe_sized(size, sector * 512, "LABELONE", 8, &what), 1);
		CHECK_STR(what, "LVM2");
	}
	CHECK_EQ(probe_sized(size, 4096, md, 4, &what), 1);
	CHECK_STR(what, "Linux RAID (md)");
	/* md 1.0 and 0.90 at the end, GPT's backup in the last sector. */
	CHECK_EQ(probe_sized(size + 1000, size - 8192, md, 4, &what), 1);
	CHECK_STR(what, "Linux RAID (md)");
	CHECK_EQ(probe_sized(size + 1000, size - 65536, md, 4, &what), 1);
	CHECK_STR(what, "Linux RAID (md)");
	CHECK_EQ(probe_sized(size, size - 512, "EFI PART", 8, &what), 1);
	CHECK_STR(what, "GPT");
	CHECK_EQ(probe_sized(size, 16384, "SKUL\xba\xbe", 6, &what), 1);
	CHECK_STR(what, "LUKS");
	CHECK_EQ(probe_sized(size, 4096 + 24, "\xc6\x85\x73\xf6\x4e\x1a\x45\xca\x82\x65\xf5\x7f\x48\xba\x6d\x81",
			     16, &what), 1);
	CHECK_STR(what, "bcache");
	/* btrfs's first backup superblock, 64 MiB in, past a wiped primary. */
	CHECK_EQ(probe_sized(128u << 20, (64u << 20) + 0x40, "_BHRfS_M", 8, &what), 1);
	CHECK_STR(what, "btrfs");
	CHECK_EQ(probe_sized(size, 65536 - 10, "SWAPSPACE2", 10, &what), 1);
	CHECK_STR(what, "swap");
}

/* What real mkfs programs write (Debian's; scripts/install-deps.sh check
 * installs them), on a 320 MiB sparse image (btrfs's default minimum is
 * above 100 MiB), probed as a device would be. */
static int probe_made_by(const char *cmd, const char **what)
{
	char dir[] = "/tmp/valet-probe-XXXXXX", line[512], img[64];
	int r;
	if (!mkdtemp(dir))
		return -errno;
	snprintf(img, sizeof(img), "%s/img", dir);
	snprintf(line, sizeof(line), "truncate -s 320M %s && %s %s >/dev/null 2>&1", img, cmd, img);
	r = system(line);
	if (r != 0) {
		fprintf(stderr, "# failed (%d): %s\n", r, line);
		r = -ENOEXEC;
	} else {
		int fd = open(img, O_RDONLY | O_CLOEXEC);
		r = fd < 0 ? -errno : fs_probe(fd, 320u << 20, what);
		if (fd >= 0)
			close(fd);
	}
	snprintf(line, sizeof(line), "rm -rf %s", dir);
	if (system(line) != 0)
		r = -EIO;
	return r;
}

TEST(real_mkfs_outputs_are_found)
{
	static const struct {
		const char *cmd, *name;
	} cases[] = {
		{ "mkfs.ext4 -q -F", "ext2/3/4" },
		{ "mkfs.ext2 -q -F", "ext2/3/4" },
		{ "mkfs.btrfs -q -f", "btrfs" },
		{ "mkfs.xfs -q -f", "xfs" },
		{ "mkswap", "swap" },
		{ "mkfs.vfat", "vfat" },
		{ "sh -c 'echo pw | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "
		  "\"$0\" -'",
		  "LUKS" },
		{ "sh -c 'echo pw | cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 \"$0\" -'", "LUKS" },
		{ "sh -c 'printf \"label: gpt\\n,\\n\" | sfdisk -q \"$0\"'", "GPT" },
		{ "sh -c 'printf \"label: dos\\n,\\n\" | sfdisk -q \"$0\"'", "MBR/boot sector" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *what = NULL;
		int r = probe_made_by(cases[i].cmd, &what);
		if (r != 1 || !what || strcmp(what, cases[i].name) != 0)
			fprintf(stderr, "# %s: %d %s\n", cases[i].cmd, r, what ? what : "(none)");
		CHECK_EQ(r, 1);
		CHECK_STR(what, cases[i].name);
	}
	/* wipefs removes the signatures, not the rest: still not blank. */
	const char *what = NULL;
	CHECK_EQ(probe_made_by("sh -c 'mkfs.ext4 -q -F \"$0\" && wipefs -q -a \"$0\"'", &what), 1);
	CHECK_STR(what, "non-zero data");
}

TEST(small_and_short_devices)
{
	const char *what = NULL;
	int fd = image();
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, 4096), 0);
	CHECK_EQ(fs_probe(fd, 4096, &what), 0);
	/* A device shorter than it claims is a read error, not "blank". */
	CHECK_EQ(fs_probe(fd, 2u << 20, &what), -EIO);
	close(fd);
}
