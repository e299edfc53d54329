/* PID 1 system setup. Order matters: /dev first (for the console and
 * /dev/kmsg, Debian's kernel does not mount devtmpfs itself), then the
 * descriptors and logging, then the rest. Mounts that already exist (a
 * first stage, or the kernel's own devtmpfs) are left alone. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/macro.h"
#include "net/rtnl.h"
#include "sysinit.h"

#define NOFILE_MAX 1048576
#define HOSTNAME_FILE "/etc/hostname"

#define MS_API (MS_NOSUID | MS_NODEV | MS_NOEXEC)

/* The original's flags, with devtmpfs and cgroup2 in place of its /var and
 * cgroup v1 hierarchies. */
const struct sysinit_mount sysinit_mounts[] = {
	{ "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755" },
	{ "proc", "/proc", "proc", MS_API, NULL },
	{ "sysfs", "/sys", "sysfs", MS_API, NULL },
	{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=666" },
	{ "shm", "/dev/shm", "tmpfs", MS_API, NULL },
	{ "run", "/run", "tmpfs", MS_API, "mode=0755" },
	{ "tmp", "/tmp", "tmpfs", MS_API, NULL },
	{ "cgroup2", "/sys/fs/cgroup", "cgroup2", MS_API, NULL },
};
const unsigned sysinit_n_mounts = ARRAY_SIZE(sysinit_mounts);
#define EARLY_MOUNTS 2 /* /dev and /proc */

static void report_step(sysinit_report_fn report, void *userdata, const char *what, const char *arg, int error)
{
	char step[96];
	snprintf(step, sizeof(step), "%s%s%s", what, arg ? " " : "", arg ? arg : "");
	report(step, error, userdata);
}

/* A directory is a mount point when it sits on another device than its
 * parent (bind mounts of the same file system aside, which PID 1 does not
 * meet at boot). */
static bool is_mount_point(const char *path)
{
	char parent[256];
	struct stat a, b;

	snprintf(parent, sizeof(parent), "%s/..", path);
	return stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

static int mount_one(const struct sysinit_mount *mt)
{
	if (mkdir(mt->target, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (is_mount_point(mt->target))
		return 0;
	if (mount(mt->source, mt->target, mt->fstype, mt->flags, mt->data) < 0)
		return -errno;
	return 0;
}

static void mount_range(unsigned from, unsigned to, sysinit_report_fn report, void *userdata)
{
	for (unsigned i = from; i < to; i++) {
		int r = mount_one(&sysinit_mounts[i]);
		if (r < 0)
			report_step(report, userdata, "mount", sysinit_mounts[i].target, r);
	}
}

static int open_std_fd(int fd)
{
	static const char *const candidates[] = { "/dev/console", "/dev/null" };

	if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
		int got = open(candidates[i], O_RDWR | O_NOCTTY);
		if (got < 0)
			continue;
		if (got == fd)
			return 0;
		/* A lower descriptor was free too: it gets filled on its turn. */
		int r = dup2(got, fd) < 0 ? -errno : 0;
		close(got);
		return r;
	}
	return -ENOENT;
}

void sysinit_early(sysinit_report_fn report, void *userdata)
{
	mount_range(0, EARLY_MOUNTS, report, userdata);
	for (int fd = 0; fd <= 2; fd++) {
		int r = open_std_fd(fd);
		if (r < 0)
			report_step(report, userdata, "open standard descriptor",
				    fd == 0   ? "0"
				    : fd == 1 ? "1"
					      : "2",
				    r);
	}
}

static int make_dir_mode(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	/* chmod, not the umask, decides the sticky bit and the final mode. */
	return chmod(path, mode) < 0 ? -errno : 0;
}

static int take_console(void)
{
	/* Already a session leader (the kernel's init is not, usually) is fine. */
	if (setsid() < 0 && getsid(0) != getpid())
		return -errno;
	if (!isatty(STDIN_FILENO))
		return -ENOTTY;
	return ioctl(STDIN_FILENO, TIOCSCTTY, 1) < 0 ? -errno : 0;
}

static int clean_environment(void)
{
	if (clearenv() != 0)
		return -ENOMEM;
	return setenv("PATH", "/usr/bin:/usr/sbin:/bin:/sbin", 1) < 0 ? -errno : 0;
}

static int raise_nofile(void)
{
	struct rlimit rl = { NOFILE_MAX, NOFILE_MAX };
	return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

static int loopback_up(void)
{
	_cleanup_close_ int fd = -1;
	unsigned idx = if_nametoindex("lo");
	int r;

	if (idx == 0)
		return -errno;
	r = rtnl_open(&fd);
	if (r < 0)
		return r;
	return rtnl_link_set_up(fd, (int)idx);
}

/* First line that is neither empty nor a comment, trimmed. */
static int hostname_from_file(void)
{
	_cleanup_fclose_ FILE *f = fopen(HOSTNAME_FILE, "re");
	char line[256];

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		char *s = line, *e;
		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strlen(s);
		while (e > s && (e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			*--e = 0;
		if (!*s || *s == '#')
			continue;
		return sethostname(s, strlen(s)) < 0 ? -errno : 0;
	}
	return 0;
}

/* The kernel rate-limits writes to /dev/kmsg by default (10 lines per 5 s
 * per writer), which silently drops an agent's log lines under load; the
 * kernel log is PID 1's only log, so let them all through. */
static int kmsg_unlimited(void)
{
	_cleanup_close_ int fd = open("/proc/sys/kernel/printk_devkmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return write(fd, "on\n", 3) == 3 ? 0 : negative_errno();
}

void sysinit_rest(bool keep_kmsg_limit, sysinit_report_fn report, void *userdata)
{
	int r;

	if (!keep_kmsg_limit && (r = kmsg_unlimited()) < 0)
		report_step(report, userdata, "lift the /dev/kmsg rate limit", NULL, r);
	mount_range(EARLY_MOUNTS, sysinit_n_mounts, report, userdata);
	if ((r = make_dir_mode("/run/lock", 01777)) < 0)
		report_step(report, userdata, "create", "/run/lock", r);
	if ((r = take_console()) < 0)
		report_step(report, userdata, "take the console as controlling terminal", NULL, r);
	if ((r = clean_environment()) < 0)
		report_step(report, userdata, "set the environment", NULL, r);
	if ((r = raise_nofile()) < 0)
		report_step(report, userdata, "raise RLIMIT_NOFILE", NULL, r);
	if ((r = loopback_up()) < 0)
		report_step(report, userdata, "bring up", "lo", r);
	if ((r = hostname_from_file()) < 0)
		report_step(report, userdata, "set the hostname from", HOSTNAME_FILE, r);
}
