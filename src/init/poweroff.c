#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "base/macro.h"
#include "base/strv.h"
#include "poweroff.h"

int poweroff_signal_all(int sig)
{
	return kill(-1, sig) < 0 ? -errno : 0;
}

bool poweroff_children_left(void)
{
	siginfo_t si = { 0 };
	/* WNOWAIT: the event loop reaps, so that watchers hear of each exit. */
	if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return errno != ECHILD;
	return true;
}

/* mountinfo escapes blanks and backslashes as \ooo. */
static void unescape_octal(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
		    r[3] <= '7') {
			*w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
			r += 4;
		} else
			*w++ = *r++;
	}
	*w = 0;
}

static bool under(const char *path, const char *top)
{
	size_t n = strlen(top);
	return strncmp(path, top, n) == 0 && (path[n] == 0 || path[n] == '/');
}

static bool keep_mounted(const char *path)
{
	return strcmp(path, "/") == 0 || under(path, "/proc") || under(path, "/sys") || under(path, "/dev");
}

/* The mount points of mountinfo, oldest first. */
static int read_mount_points(char ***ret)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	struct strv_builder list = { 0 };
	char line[4096];

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* id parent major:minor root mount-point ... */
		char *save = NULL, *field = strtok_r(line, " ", &save);
		for (int i = 0; field && i < 4; i++)
			field = strtok_r(NULL, " ", &save);
		if (!field)
			continue;
		unescape_octal(field);
		if (strv_builder_add(&list, field) < 0) {
			strv_free(list.v);
			return -ENOMEM;
		}
	}
	*ret = list.v;
	return 0;
}

void poweroff_unmount_all(poweroff_report_fn report, void *userdata)
{
	_cleanup_(strv_freep) char **points = NULL;
	int r = read_mount_points(&points);

	if (r < 0) {
		report("/proc/self/mountinfo", r, false, userdata);
		return;
	}
	size_t n = 0;
	while (points && points[n])
		n++;
	for (size_t i = n; i-- > 0;) {
		const char *p = points[i];
		if (keep_mounted(p))
			continue;
		if (umount2(p, UMOUNT_NOFOLLOW) == 0)
			continue;
		int err = -errno;
		bool ro = mount(NULL, p, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0;
		report(p, err, ro, userdata);
	}
	(void)mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL);
}

int poweroff_links_down(void)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct if_nameindex *all = if_nameindex();
	int failed = 0;

	if (fd < 0 || !all) {
		if (all)
			if_freenameindex(all);
		return -1;
	}
	for (struct if_nameindex *i = all; i->if_index; i++) {
		struct ifreq ifr = { 0 };
		if (strcmp(i->if_name, "lo") == 0)
			continue;
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", i->if_name);
		if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 || !(ifr.ifr_flags & IFF_UP))
			continue;
		ifr.ifr_flags &= ~IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			failed++;
	}
	if_freenameindex(all);
	return failed;
}
