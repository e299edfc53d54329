/* valet.v1.Snapshot's pure parts: which filesystems Freeze acts on (from
 * mountinfo text), Restored's reseed through an injected system-call
 * layer (the kernel's pool cannot be read back), plus the kernel's own
 * layer refusing it in a user namespace, and the host's time moved on by
 * the time Restored held the request. */
#include <fcntl.h>
#include <linux/random.h>
#include <sched.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "agent/clock.h"
#include "snapshot-service/entropy.h"
#include "snapshot-service/mounts.h"
#include "test.h"

/* A guest's mountinfo: the root on vda, /data on vdb with a bind mount of
 * it, /data/cache on vdc, a path with a space on vdd, a read-only vde,
 * and what is not a block device. */
static const char MOUNTINFO[] =
	"22 27 0:21 / /proc rw,relatime - proc proc rw\n"
	"23 27 0:22 / /sys rw,relatime - sysfs sysfs rw\n"
	"27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
	"28 27 0:25 / /run rw,nosuid - tmpfs tmpfs rw,size=4k\n"
	"30 27 254:16 / /data rw,relatime - ext4 /dev/vdb rw\n"
	"31 30 254:32 / /data/cache rw,relatime - xfs /dev/vdc rw,attr2\n"
	"32 27 254:16 /sub /srv/sub ro,relatime shared:4 - ext4 /dev/vdb rw\n"
	"33 27 254:48 / /mnt/with\\040space rw - ext4 /dev/vdd rw\n"
	"34 27 254:64 / /mnt/ro ro - ext4 /dev/vde ro\n"
	"35 27 0:40 / /merged rw - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c\n"
	"36 27 0:41 / /dev/shm rw - tmpfs /dev/shm rw\n";

static int fake_block(const char *source, dev_t *ret, void *userdata)
{
	static const char *const devs[] = { "/dev/vda", "/dev/vdb", "/dev/vdc", "/dev/vdd", "/dev/vde" };

	for (unsigned i = 0; i < sizeof(devs) / sizeof(devs[0]); i++)
		if (strcmp(source, devs[i]) == 0) {
			*ret = makedev(254, i * 16);
			return 0;
		}
	return -ENOTBLK;
}

static char *joined(const struct snap_mount *m, size_t n)
{
	static char buf[1024];
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? "," : "", m[i].path);
	return buf;
}

TEST(mounts_writable_block_devices_children_first)
{
	struct snap_mount *m;
	size_t n;

	CHECK_EQ(snap_mounts_select(MOUNTINFO, "/", fake_block, NULL, &m, &n), 0);
	/* vdb once (its bind mount left out), vde (read-only) and the
	 * others (no block device) left out; deeper first. */
	CHECK_STR(joined(m, n), "/mnt/with space,/data/cache,/data,/");
	CHECK_EQ(m[1].dev, makedev(254, 32));
	CHECK_EQ(m[3].dev, makedev(254, 0));
	snap_mounts_free(m, n);
}

TEST(mounts_only_below_the_given_directory)
{
	struct snap_mount *m;
	size_t n;

	CHECK_EQ(snap_mounts_select(MOUNTINFO, "/data", fake_block, NULL, &m, &n), 0);
	CHECK_STR(joined(m, n), "/data/cache,/data");
	snap_mounts_free(m, n);
	CHECK_EQ(snap_mounts_select(MOUNTINFO, "/data/", fake_block, NULL, &m, &n), 0);
	CHECK_STR(joined(m, n), "/data/cache,/data");
	snap_mounts_free(m, n);
	/* A prefix of a name is not a parent directory. */
	CHECK_EQ(snap_mounts_select(MOUNTINFO, "/dat", fake_block, NULL, &m, &n), 0);
	CHECK_EQ(n, 0);
	snap_mounts_free(m, n);
	CHECK_EQ(snap_mounts_select(MOUNTINFO, "/mnt/with space", fake_block, NULL, &m, &n), 0);
	CHECK_STR(joined(m, n), "/mnt/with space");
	snap_mounts_free(m, n);
}

TEST(mounts_equal_depth_later_mount_first_and_bad_lines)
{
	static const char two[] = "1 0 254:0 / /a rw - ext4 /dev/vda rw\n"
				  "2 0 254:16 / /b rw - ext4 /dev/vdb rw";
	struct snap_mount *m;
	size_t n;

	CHECK_EQ(snap_mounts_select(two, "/", fake_block, NULL, &m, &n), 0);
	CHECK_STR(joined(m, n), "/b,/a");
	snap_mounts_free(m, n);
	CHECK_EQ(snap_mounts_select("", "/", fake_block, NULL, &m, &n), 0);
	CHECK_EQ(n, 0);
	snap_mounts_free(m, n);
	CHECK_EQ(snap_mounts_select("1 0 254:0 / /a rw ext4 /dev/vda rw\n", "/", fake_block, NULL, &m, &n), -EINVAL);
	CHECK_EQ(snap_mounts_select("1 0 x / /a rw - ext4 /dev/vda rw\n", "/", fake_block, NULL, &m, &n), -EINVAL);
	CHECK_EQ(snap_mounts_select("1 0 254:0 / a rw - ext4 /dev/vda rw\n", "/", fake_block, NULL, &m, &n), -EINVAL);
}

/* What the injected layer saw. */
struct seen {
	char path[64];
	int flags, n_ioctl, closed;
	unsigned long req[4];
	int count, size;
	uint8_t bytes[SNAP_ENTROPY_MAX];
	int fail_req; /* 1: RNDADDENTROPY fails with EPERM, 2: RNDRESEEDCRNG */
};

static int f_open(const char *path, int flags, void *ud)
{
	struct seen *s = ud;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->flags = flags;
	return 42;
}

static int f_ioctl(int fd, unsigned long req, void *arg, void *ud)
{
	struct seen *s = ud;
	if (fd != 42 || s->n_ioctl == 4)
		return -EBADF;
	s->req[s->n_ioctl++] = req;
	if (req == RNDADDENTROPY) {
		const struct rand_pool_info *p = arg;
		s->count = p->entropy_count;
		s->size = p->buf_size;
		memcpy(s->bytes, p->buf, (size_t)p->buf_size);
		if (s->fail_req == 1)
			return -EPERM;
	}
	if (req == RNDRESEEDCRNG && s->fail_req == 2)
		return -EIO;
	return 0;
}

static int f_close(int fd, void *ud)
{
	((struct seen *)ud)->closed += fd == 42;
	return 0;
}

TEST(entropy_reaches_the_kernel_then_reseeds)
{
	struct seen s = { 0 };
	struct snap_entropy_ops ops = { f_open, f_ioctl, f_close, &s };
	uint8_t host[48];
	const char *step = NULL;

	for (size_t i = 0; i < sizeof(host); i++)
		host[i] = (uint8_t)(i * 37 + 11);
	CHECK_EQ(snap_entropy_add(&ops, host, sizeof(host), &step), 0);
	CHECK_STR(s.path, "/dev/urandom");
	CHECK_EQ(s.flags & O_ACCMODE, O_WRONLY);
	CHECK(s.flags & O_CLOEXEC);
	CHECK_EQ(s.n_ioctl, 2);
	CHECK_EQ(s.req[0], RNDADDENTROPY);
	CHECK_EQ(s.req[1], RNDRESEEDCRNG);
	CHECK_EQ(s.size, 48);
	CHECK_EQ(s.count, 48 * 8);
	CHECK(memcmp(s.bytes, host, sizeof(host)) == 0);
	CHECK_EQ(s.closed, 1);
}

TEST(entropy_failures_name_their_step_and_close)
{
	struct seen s = { .fail_req = 1 };
	struct snap_entropy_ops ops = { f_open, f_ioctl, f_close, &s };
	uint8_t host[SNAP_ENTROPY_MAX] = { 1 };
	const char *step = NULL;

	CHECK_EQ(snap_entropy_add(&ops, host, 32, &step), -EPERM);
	CHECK_STR(step, "RNDADDENTROPY");
	CHECK_EQ(s.n_ioctl, 1); /* no reseed after a failed add */
	CHECK_EQ(s.closed, 1);
	s = (struct seen){ .fail_req = 2 };
	CHECK_EQ(snap_entropy_add(&ops, host, SNAP_ENTROPY_MAX, &step), -EIO);
	CHECK_STR(step, "RNDRESEEDCRNG");
	CHECK_EQ(s.size, SNAP_ENTROPY_MAX);
	CHECK_EQ(s.closed, 1);
	/* Too few or too many bytes: nothing is opened. */
	s = (struct seen){ 0 };
	CHECK_EQ(snap_entropy_add(&ops, host, 31, &step), -EINVAL);
	CHECK_EQ(snap_entropy_add(&ops, host, SNAP_ENTROPY_MAX + 1, &step), -EINVAL);
	CHECK_EQ(s.path[0], 0);
}

/* The kernel's layer, in a user namespace of a child: RNDADDENTROPY needs
 * CAP_SYS_ADMIN in the initial namespace, so it is refused there, and the
 * reseed is not tried. Nothing reaches this machine's pool. */
TEST(entropy_kernel_layer_refused_in_a_user_namespace)
{
	pid_t pid = fork();
	int status;

	CHECK(pid >= 0);
	if (pid == 0) {
		struct snap_entropy_ops ops;
		uint8_t host[32] = { 0 };
		const char *step = "";
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(3);
		snap_entropy_ops_kernel(&ops);
		int r = snap_entropy_add(&ops, host, sizeof(host), &step);
		_exit(r == -EPERM && strcmp(step, "RNDADDENTROPY") == 0 ? 0 : 1);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
}

TEST(time_moved_on_by_the_time_held)
{
	Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

	t.seconds = 1800000000;
	t.nanos = 999999000;
	maitred_time_add_usec(&t, 1); /* carries into the seconds */
	CHECK_EQ(t.seconds, 1800000001);
	CHECK_EQ(t.nanos, 0);
	maitred_time_add_usec(&t, 54683);
	CHECK_EQ(t.seconds, 1800000001);
	CHECK_EQ(t.nanos, 54683000);
	maitred_time_add_usec(&t, 2999999999ULL); /* more than a second */
	CHECK_EQ(t.seconds, 1800003001);
	CHECK_EQ(t.nanos, 54682000);
	maitred_time_add_usec(&t, 0);
	CHECK_EQ(t.seconds, 1800003001);
	CHECK_EQ(t.nanos, 54682000);
}
