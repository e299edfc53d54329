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
	/* The middle is not read: a device is "blank" by its ends. */
	CHECK_EQ(probe_with(IMAGE_SIZE / 2, "x", 1, &what), 0);
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
