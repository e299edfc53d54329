#include "power-off.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "base/macro.h"
#include "base/parse.h"
#include "base/strv.h"
#include "net/rtnl.h"

int power_off_signal_all(int sig)
{
	return kill(-1, sig) < 0 ? -errno : 0;
}

bool power_off_children_left(void)
{
	siginfo_t si = { 0 };
	/* WNOWAIT: the event loop reaps, so that watchers hear of each exit. */
	if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return errno != ECHILD;
	return true;
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
static int read_mount_points(const char *mountinfo, struct strv_builder *list)
{
	_cleanup_fclose_ FILE *f = fopen(mountinfo, "re");
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
		if (strv_builder_add(list, field) < 0)
			return -ENOMEM;
	}
	return 0;
}

int power_off_mount_points(const char *mountinfo, char ***ret)
{
	_cleanup_(strv_freep) char **all = NULL;
	struct strv_builder list = { 0 }, out = { 0 };
	int r = read_mount_points(mountinfo, &list);

	all = list.v;
	if (r < 0)
		return r;
	for (size_t i = list.n; i-- > 0;)
		if (!keep_mounted(all[i]) && strv_builder_add(&out, all[i]) < 0) {
			strv_free(out.v);
			return -ENOMEM;
		}
	if (!out.v && !(out.v = calloc(1, sizeof(char *))))
		return -ENOMEM;
	*ret = out.v;
	return 0;
}

void power_off_unmount_all(power_off_report_fn report, void *userdata)
{
	_cleanup_(strv_freep) char **points = NULL;
	int r = power_off_mount_points("/proc/self/mountinfo", &points);

	if (r < 0) {
		report("/proc/self/mountinfo", r, false, userdata);
		return;
	}
	for (char **p = points; *p; p++) {
		if (umount2(*p, UMOUNT_NOFOLLOW) == 0)
			continue;
		int err = -errno;
		bool ro = mount(NULL, *p, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0;
		report(*p, err, ro, userdata);
	}
	(void)mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL);
}

static void if_freenameindexp(struct if_nameindex **p)
{
	if (*p)
		if_freenameindex(*p);
}

int power_off_links_down(void)
{
	_cleanup_close_ int fd = -1;
	_cleanup_(if_freenameindexp) struct if_nameindex *all = if_nameindex();
	int failed = 0, r;

	if (!all)
		return -errno;
	r = rtnl_open(&fd);
	if (r < 0)
		return r;
	for (struct if_nameindex *i = all; i->if_index; i++)
		if (strcmp(i->if_name, "lo") != 0 && rtnl_link_set_down(fd, (int)i->if_index) < 0)
			failed++;
	return failed;
}
