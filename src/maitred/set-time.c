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
#include "guest-config.h"
#include "guest.pb-c.h"
#include "maitred.h"

/* Year 9999: anything later is not a clock reading. */
#define MAX_PLAUSIBLE_SECONDS 253402300799LL

/* 2026-11-01, when this code was written: no host clock can be earlier. */
#define CODE_EPOCH 1793491200LL

/* The build's date (VALET_SOURCE_EPOCH, from meson.build) or the code's,
 * whichever is later: a host clock earlier than that is wrong for sure. */
static int64_t build_epoch(void)
{
	return VALET_SOURCE_EPOCH > CODE_EPOCH ? VALET_SOURCE_EPOCH : CODE_EPOCH;
}

void maitred_set_time(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const VmTools__SetTimeRequest *req = (const VmTools__SetTimeRequest *)request;
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	const Google__Protobuf__Timestamp *t = req->time;
	struct timespec old, new;
	int64_t floor = build_epoch();

	/* Upstream silently ignores a time of "roughly 0"; we say so instead,
	 * and leave the clock alone. */
	if (!t || t->seconds < floor || t->seconds > MAX_PLAUSIBLE_SECONDS || t->nanos < 0 || t->nanos >= 1000000000) {
		long long s = t ? (long long)t->seconds : 0;
		int ns = t ? t->nanos : 0;
		log_info("SetTime from %s: INVALID_ARGUMENT: time %lld.%09d", rpc_call_peer(call), s, ns);
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT,
				     "time %lld.%09d s is not plausible: it must be after valet's build date "
				     "(%lld) and nanos within 0-999999999",
				     s, ns, (long long)floor);
	}
	new = (struct timespec){ .tv_sec = (time_t)t->seconds, .tv_nsec = t->nanos };
	(void)clock_gettime(CLOCK_REALTIME, &old);
	if (clock_settime(CLOCK_REALTIME, &new) < 0) {
		int err = errno;
		log_info("SetTime from %s: failed: %s", rpc_call_peer(call), strerror(err));
		return rpc_call_fail(call, err == EPERM ? RPC_PERMISSION_DENIED : RPC_INTERNAL,
				     "could not set the clock to %lld: %s", (long long)new.tv_sec, strerror(err));
	}
	double delta = (double)(new.tv_sec - old.tv_sec) + (double)(new.tv_nsec - old.tv_nsec) / 1e9;
	log_info("SetTime from %s: clock stepped from %lld.%09ld to %lld.%09ld (%+.3f s)", rpc_call_peer(call),
		 (long long)old.tv_sec, old.tv_nsec, (long long)new.tv_sec, new.tv_nsec, delta);
	rpc_call_reply(call, &resp.base);
}

/* A zoneinfo file starts with "TZif" (tzfile(5)); tables like zone1970.tab
 * and directories are not zones. */
static int check_tzfile(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char magic[4];
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EISDIR;
	if (pread(fd, magic, 4, 0) != 4 || memcmp(magic, "TZif", 4) != 0)
		return -ENOEXEC;
	return 0;
}

/* Removes whatever is mounted on path (an earlier use_bind_mount). */
static int unmount_all(const char *path)
{
	for (int i = 0; i < 16; i++)
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
			return errno == EINVAL || errno == ENOENT ? 0 : -errno;
	return -EBUSY;
}

static void tz_fail(struct rpc_call *call, int code, const char *zone, const char *fmt, const char *why)
{
	log_info("SetTimezone from %s: %s: zone \"%s\": %s%s", rpc_call_peer(call), rpc_code_name(code), ESCAPED(zone),
		 fmt, why);
	rpc_call_fail(call, code, "time zone \"%.64s\": %s%s", zone, fmt, why);
}

void maitred_set_timezone(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const VmTools__SetTimezoneRequest *req = (const VmTools__SetTimezoneRequest *)request;
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	struct maitred *m = userdata;
	const char *lt = m->opts.localtime;
	char why[128], zone[PATH_MAX];
	int r;

	if (guest_check_zone_name(req->timezone_name, why, sizeof(why)) < 0)
		return tz_fail(call, RPC_INVALID_ARGUMENT, req->timezone_name, "", why);
	if (snprintf(zone, sizeof(zone), "%s/%s", m->opts.zoneinfo_dir, req->timezone_name) >= (int)sizeof(zone))
		return tz_fail(call, RPC_INVALID_ARGUMENT, req->timezone_name, "", "name too long");
	r = check_tzfile(zone);
	if (r == -ENOENT || r == -ENOTDIR)
		return tz_fail(call, RPC_INVALID_ARGUMENT, req->timezone_name, "no such zone in ",
			       m->opts.zoneinfo_dir);
	if (r == -EISDIR || r == -ENOEXEC)
		return tz_fail(call, RPC_INVALID_ARGUMENT, req->timezone_name, "not a zoneinfo file in ",
			       m->opts.zoneinfo_dir);
	if (r < 0)
		return tz_fail(call, RPC_INTERNAL, req->timezone_name, "cannot read the zone file: ", strerror(-r));

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
