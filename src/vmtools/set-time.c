/* SetTime and SetTimezone: the guest's wall clock and time zone, with the
 * kernel's interfaces only (clock_settime, symlink/rename, bind mount). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/escape.h"
#include "base/log.h"
#include "common.pb-c.h"
#include "agent/clock.h"
#include "agent/guest-config.h"
#include "guest.pb-c.h"
#include "vmtools.h"

void maitred_set_time(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const VmTools__SetTimeRequest *req = (const VmTools__SetTimeRequest *)request;
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	const Google__Protobuf__Timestamp *t = req->time;
	struct timespec old;
	int64_t step;
	char why[160];
	int r;

	/* Upstream silently ignores a time of "roughly 0"; we say so instead,
	 * and leave the clock alone. */
	if (maitred_time_check(t, why, sizeof(why)) < 0) {
		log_info("SetTime from %s: INVALID_ARGUMENT: %s", rpc_call_peer(call), why);
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "%s", why);
	}
	r = maitred_clock_step(t, &old, &step);
	if (r < 0) {
		log_info("SetTime from %s: failed: %s", rpc_call_peer(call), strerror(-r));
		return rpc_call_fail(call, r == -EPERM ? RPC_PERMISSION_DENIED : RPC_INTERNAL,
				     "could not set the clock to %lld: %s", (long long)t->seconds, strerror(-r));
	}
	log_info("SetTime from %s: clock stepped from %lld.%09ld to %lld.%09d (%+.3f s)", rpc_call_peer(call),
		 (long long)old.tv_sec, old.tv_nsec, (long long)t->seconds, t->nanos, (double)step / 1e9);
	rpc_call_reply(call, &resp.base);
}

/* Whether path itself (not what a link there points to) is the root of a
 * mount: 1, 0, or -EOPNOTSUPP when the kernel cannot tell (before 5.8). */
static int is_mount_root(const char *path)
{
	struct statx sx;

	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, &sx) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!(sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
		return -EOPNOTSUPP;
	return !!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Removes whatever is mounted on path (an earlier use_bind_mount). umount2
 * is called only on a mount point, so that the symlink mode needs no
 * CAP_SYS_ADMIN when nothing is mounted there: its EPERM cannot tell "not
 * mounted" from "not allowed". */
static int unmount_all(const char *path)
{
	for (int i = 0; i < 16; i++) {
		int r = is_mount_root(path);
		if (r == 0)
			return 0;
		if (r < 0 && r != -EOPNOTSUPP)
			return r;
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
			return errno == EINVAL || errno == ENOENT ? 0 : -errno;
	}
	return -EBUSY;
}

static void tz_fail(struct rpc_call *call, int code, const char *zone, const char *fmt, const char *why)
{
	/* why may quote the zone (a link's target, a character of it). */
	log_info("SetTimezone from %s: %s: zone \"%s\": %s%s", rpc_call_peer(call), rpc_code_name(code), ESCAPED(zone),
		 fmt, ESCAPED(why));
	rpc_call_fail(call, code, "time zone \"%.64s\": %s%s", zone, fmt, why);
}

void maitred_set_timezone(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const VmTools__SetTimezoneRequest *req = (const VmTools__SetTimezoneRequest *)request;
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	struct maitred *m = userdata;
	const char *lt = m->opts.localtime;
	char why[128], zone[PATH_MAX];
	_cleanup_close_ int dirfd = -1, zfd = -1;
	int r;

	if (guest_check_zone_name(req->timezone_name, why, sizeof(why)) < 0)
		return tz_fail(call, RPC_INVALID_ARGUMENT, req->timezone_name, "", why);
	if (snprintf(zone, sizeof(zone), "%s/%s", m->opts.zoneinfo_dir, req->timezone_name) >= (int)sizeof(zone))
		return tz_fail(call, RPC_INVALID_ARGUMENT, req->timezone_name, "", "name too long");
	dirfd = open(m->opts.zoneinfo_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return tz_fail(call, RPC_INTERNAL, req->timezone_name, "cannot open the zoneinfo directory: ",
			       strerror(errno));
	zfd = guest_open_zone(dirfd, req->timezone_name, why, sizeof(why));
	if (zfd == -EINVAL) {
		char text[PATH_MAX + 160];
		snprintf(text, sizeof(text), "%s in %s", why, m->opts.zoneinfo_dir);
		return tz_fail(call, RPC_INVALID_ARGUMENT, req->timezone_name, "", text);
	}
	if (zfd < 0)
		return tz_fail(call, RPC_INTERNAL, req->timezone_name, "cannot open the zone file: ", strerror(-zfd));

	if (maitred_refuse_if_frozen(m, call))
		return;
	r = unmount_all(lt);
	if (r < 0)
		return tz_fail(call, RPC_INTERNAL, req->timezone_name,
			       "could not unmount the old bind mount: ", strerror(-r));
	if (req->use_bind_mount) {
		/* For programs that do not follow chained symlinks: the zone
		 * file itself appears at /etc/localtime. The mount point must
		 * be a regular file, not a symlink (mount would follow it). */
		struct stat st;
		if (lstat(lt, &st) < 0 || !S_ISREG(st.st_mode)) {
			r = guest_write_file_atomic(lt, "", 0, 0644);
			if (r < 0)
				return tz_fail(call, RPC_INTERNAL, req->timezone_name,
					       "could not create the mount point: ", strerror(-r));
		}
		if (mount(zone, lt, NULL, MS_BIND, NULL) < 0 ||
		    mount(NULL, lt, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) {
			r = errno;
			(void)unmount_all(lt);
			return tz_fail(call, RPC_INTERNAL, req->timezone_name,
				       "could not bind-mount the zone file: ", strerror(r));
		}
	} else {
		r = guest_symlink_atomic(zone, lt);
		if (r < 0)
			return tz_fail(call, RPC_INTERNAL, req->timezone_name,
				       "could not replace the symlink: ", strerror(-r));
	}
	log_info("SetTimezone from %s: %s now %s %s", rpc_call_peer(call), lt,
		 req->use_bind_mount ? "bind-mounts" : "links to", ESCAPED(zone));
	rpc_call_reply(call, &resp.base);
}
