/* The power-off mechanics (init/power-off.c), where they can be tried
 * safely: the unmount order from a mountinfo file (the unmounting itself
 * is not tried: remounting / read-only would reach the host's file system
 * from any mount namespace), signalling everyone inside a new PID namespace,
 * and taking links down inside a new network namespace. */
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "base/strv.h"
#include "init/power-off.h"
#include "net/rtnl.h"
#include "test.h"

#define SKIP 77

TEST(mount_points_newest_first_without_the_kept_ones)
{
	char path[] = "/tmp/valet-test-mountinfo-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	static const char text[] = "21 1 0:20 / / rw - ext4 /dev/vda rw\n"
				   "22 21 0:21 / /proc rw - proc proc rw\n"
				   "23 22 0:22 / /proc/sys/fs/binfmt_misc rw - binfmt_misc x rw\n"
				   "24 21 0:23 / /sys rw - sysfs sysfs rw\n"
				   "25 21 0:24 / /dev rw - devtmpfs udev rw\n"
				   "26 25 0:25 / /dev/pts rw - devpts devpts rw\n"
				   "27 21 0:26 / /sysroot rw - tmpfs x rw\n"
				   "28 21 0:27 / /mnt/with\\040blank rw - tmpfs x rw\n"
				   "29 28 0:28 / /mnt/with\\040blank/inner rw - tmpfs x rw\n"
				   "30 21 0:29 / /devices rw - tmpfs x rw\n"
				   "short line\n";
	CHECK(write(fd, text, sizeof(text) - 1) == (ssize_t)sizeof(text) - 1);
	close(fd);

	char **points = NULL;
	int r = power_off_mount_points(path, &points);
	unlink(path);
	CHECK_EQ(r, 0);
	CHECK(points);
	char joined[256] = "";
	for (char **p = points; *p; p++)
		snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s%s", p == points ? "" : ",", *p);
	strv_free(points);
	CHECK_STR(joined, "/devices,/mnt/with blank/inner,/mnt/with blank,/sysroot");
}

TEST(mount_points_unreadable_mountinfo)
{
	char **points = NULL;
	CHECK_EQ(power_off_mount_points("/nonexistent/valet/mountinfo", &points), -ENOENT);
	CHECK(!points);
}

/* Runs fn in a child, in new namespaces (flags); with CLONE_NEWPID, fn runs
 * as that namespace's PID 1. Returns fn's exit code, SKIP when the
 * namespaces cannot be made. */
static int in_namespaces(int flags, int (*fn)(void))
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (unshare(flags) < 0)
			_exit(SKIP);
		pid_t inner = fork();
		if (inner < 0)
			_exit(1);
		if (inner == 0)
			_exit(fn());
		int st;
		while (waitpid(inner, &st, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st));
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static pid_t child(bool ignore_term)
{
	int p[2];
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		if (ignore_term)
			signal(SIGTERM, SIG_IGN);
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	/* It is ready (its SIGTERM ignored, if asked), or it failed. */
	ssize_t n = read(p[0], &c, 1);
	close(p[0]);
	return n == 1 ? pid : -1;
}

/* As PID 1 of its own PID namespace: kill(-1) reaches only this namespace. */
static int signal_everyone(void)
{
	int st;

	if (getpid() != 1)
		return 2; /* never signal everyone outside a namespace */
	if (power_off_children_left())
		return 3;
	if (power_off_signal_all(SIGTERM) != -ESRCH)
		return 4;
	pid_t a = child(false), b = child(false), stubborn = child(true);
	if (a < 0 || b < 0 || stubborn < 0)
		return 5;
	if (!power_off_children_left())
		return 6;
	if (power_off_signal_all(SIGTERM) != 0)
		return 7;
	if (waitpid(a, &st, 0) != a || !WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM)
		return 8;
	if (waitpid(b, &st, 0) != b || !WIFSIGNALED(st))
		return 9;
	/* The one that ignores SIGTERM is still there, and counted. */
	if (!power_off_children_left() || waitpid(stubborn, &st, WNOHANG) != 0)
		return 10;
	if (power_off_signal_all(SIGKILL) != 0)
		return 11;
	/* Counted until reaped: the loop reaps, not the check (WNOWAIT). */
	while (waitid(P_PID, (id_t)stubborn, &(siginfo_t){ 0 }, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	if (!power_off_children_left())
		return 12;
	if (waitpid(stubborn, &st, 0) != stubborn || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		return 13;
	if (power_off_children_left())
		return 14;
	return 0;
}

TEST(signal_all_and_children_left_in_a_pid_namespace)
{
	int r = in_namespaces(CLONE_NEWPID, signal_everyone);
	if (r == SKIP) {
		printf("# no PID namespace here: skipped\n");
		return;
	}
	CHECK_EQ(r, 0);
}

static int link_flags(const char *name)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	int r = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 ? ifr.ifr_flags : -1;
	if (fd >= 0)
		close(fd);
	return r;
}

static int set_up(const char *name)
{
	int fd, r;
	unsigned idx = if_nametoindex(name);
	if (idx == 0 || rtnl_open(&fd) < 0)
		return -1;
	r = rtnl_link_set_up(fd, (int)idx);
	close(fd);
	return r;
}

/* In a new network namespace: lo, and a veth pair when the kernel has them
 * (dummy links are a module not every kernel loads). */
static int links_down(void)
{
	bool dummy = system("ip link add valet-d0 type veth peer name valet-d1 2>/dev/null") == 0;

	if (set_up("lo") < 0 || (dummy && (set_up("valet-d0") < 0 || set_up("valet-d1") < 0)))
		return 2;
	if (!(link_flags("lo") & IFF_UP) || (dummy && !(link_flags("valet-d0") & IFF_UP)))
		return 3;
	if (power_off_links_down() != 0)
		return 4;
	if (!(link_flags("lo") & IFF_UP))
		return 5; /* lo stays up */
	if (dummy && ((link_flags("valet-d0") & IFF_UP) || (link_flags("valet-d1") & IFF_UP)))
		return 6;
	/* Already down: still no failure. */
	if (power_off_links_down() != 0)
		return 7;
	return dummy ? 0 : SKIP;
}

TEST(links_down_in_a_network_namespace)
{
	int r = in_namespaces(CLONE_NEWNET, links_down);
	if (r == SKIP) {
		printf("# no network namespace or no veth links here: partly skipped\n");
		return;
	}
	CHECK_EQ(r, 0);
}
