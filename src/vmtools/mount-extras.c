/* Mount's fields 6-8, added after 2017: create_target (mkdir -p, 0755),
 * permissions (chmod of the mounted directory), mkfs_if_needed.
 *
 * mkfs_if_needed can destroy data, so it formats only when all of these
 * hold: the mount failed with EINVAL (what the kernel says when there is no
 * valid filesystem of that type; not ENODEV, ENOENT, EBUSY...), the fstype
 * is a plain name, the source is a block device nobody has open (O_EXCL),
 * and fs_probe() finds it blank (no signature, zeros where it looks). Then
 * mkfs.<fstype> from the image's PATH runs in the background (through
 * spawn_process) and the mount is tried once more.
 *
 * From the check to mkfs's end the device is locked: flock(LOCK_EX) on the
 * device node, the convention of systemd's "Locking Block Device Access"
 * that udev honours too. mkfs inherits the locked descriptor as its
 * standard input, so the lock lasts exactly as long as mkfs, whatever
 * becomes of the call; a second Mount(mkfs_if_needed) of the device in the
 * meantime finds it locked and is refused. (The O_EXCL descriptor of the
 * check cannot be the lock: mkfs opens the device O_EXCL itself.) The lock
 * is taken before the first mount attempt (maitred_mount_lock()): that
 * attempt opens the device exclusively for a moment, which made a mkfs
 * started by an earlier call fail to open it. Every Mount of a block
 * device takes the lock shared for its attempt (as udev does when it
 * probes, so a disk udev is looking at still mounts), finds a device being
 * formatted busy, and converts it to exclusive only once a format is
 * actually wanted. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/escape.h"
#include "base/list.h"
#include "base/log.h"
#include "base/wait-status.h"
#include "base/spawn.h"
#include "fs-probe.h"
#include "guest.pb-c.h"
#include "vmtools.h"

int maitred_mount_prepare_target(const VmTools__MountRequest *req)
{
	char path[PATH_MAX];

	if (!req->target[0] || snprintf(path, sizeof(path), "%s", req->target) >= (int)sizeof(path))
		return -EINVAL;
	/* mkdir -p: each component in turn, existing ones are fine. */
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = c;
		if (!c)
			break;
	}
	return 0;
}

int maitred_mount_chmod(const VmTools__MountRequest *req)
{
	if (req->permissions != 0 && chmod(req->target, (mode_t)req->permissions) < 0)
		return -errno;
	return 0;
}

/* One mkfs run. It belongs to the storage family (listed in its mkfs_jobs) until mkfs
 * exits, whether the call is still there or not: a cancelled call (its
 * deadline passed, the client went away) leaves call NULL, and the job
 * still reaps mkfs and logs how it ended, without mounting. */
struct mkfs_job {
	struct mkfs_job *prev, *next;
	struct vmtools_storage *m;
	struct rpc_call *call;
	struct loop_child *watch;
	char mkfs[64];
	char peer[80];
	pid_t pid;
	char *source, *target, *fstype, *options;
	uint64_t flags;
	uint32_t permissions;
};

static void mkfs_job_free(struct mkfs_job *j)
{
	if (!j)
		return;
	if (j->m)
		LIST_REMOVE(j->m->mkfs_jobs, j);
	loop_child_free(j->watch);
	free(j->source);
	free(j->target);
	free(j->fstype);
	free(j->options);
	free(j);
}

void maitred_mkfs_jobs_free(struct vmtools_storage *m)
{
	while (m->mkfs_jobs) {
		/* A call still open is cancelled later, with the server: it
		 * must not reach a job that is gone by then. */
		if (m->mkfs_jobs->call)
			rpc_call_set_cancel(m->mkfs_jobs->call, NULL, NULL);
		mkfs_job_free(m->mkfs_jobs);
	}
}

static void on_mkfs_cancel(struct rpc_call *call, void *userdata)
{
	struct mkfs_job *j = userdata;

	/* mkfs goes on, and the job with it: on_mkfs_exit reaps it. */
	log_info("Mount from %s: call ended while %s %s (pid %d) runs; waiting for it, will not mount", j->peer,
		 j->mkfs, ESCAPED(j->source), (int)j->pid);
	j->call = NULL;
}

static void on_mkfs_exit(pid_t pid, int status, void *userdata)
{
	struct mkfs_job *j = userdata;
	VmTools__MountResponse resp = VM_TOOLS__MOUNT_RESPONSE__INIT;
	const char *peer = j->peer;

	if (!j->call) {
		log_info("Mount from %s: %s %s (pid %d) ended after its call: %s; not mounted", peer, j->mkfs,
			 ESCAPED(j->source), (int)pid, wait_status_str(status, (char[WAIT_STATUS_STR_MAX]){ 0 }));
		return mkfs_job_free(j);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		int code = wait_status_code(status);
		log_info("Mount from %s: %s %s failed (status %d)", peer, j->mkfs, ESCAPED(j->source), code);
		rpc_call_fail(j->call, RPC_INTERNAL, "%s %s failed (status %d); nothing mounted", j->mkfs, j->source,
			      code);
		return mkfs_job_free(j);
	}
	if (mount(j->source, j->target, j->fstype, (unsigned long)j->flags, j->options) < 0)
		resp.error = errno;
	else if (j->permissions && chmod(j->target, (mode_t)j->permissions) < 0)
		resp.error = errno;
	log_info("Mount from %s: made a new %s filesystem on blank %s; mount on \"%s\": %s", peer, j->fstype,
		 ESCAPED(j->source), ESCAPED(j->target), resp.error ? strerror(resp.error) : "OK");
	rpc_call_reply(j->call, &resp.base);
	mkfs_job_free(j);
}

static bool plain_name(const char *s)
{
	if (!*s || strlen(s) > 32)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

/* The device locked and blank: returns the locked descriptor, for mkfs to
 * hold; otherwise fails call and returns <0. */
int maitred_mount_lock(const VmTools__MountRequest *req)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	/* stat first: opening a character device may act (a tape rewinds). */
	if (stat(req->source, &st) < 0 || !S_ISBLK(st.st_mode))
		return -ENOTBLK;
	fd = open(req->source, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0)
		return -errno;
	return TAKE_FD(fd);
}

static int lock_blank(struct rpc_call *call, const char *source, int mount_error, int held)
{
	_cleanup_close_ int fd = -1, lock = held;
	const char *what = NULL;
	struct stat st;
	uint64_t size;
	int r;

	/* stat first: opening a character device may act (a tape rewinds). */
	if (stat(source, &st) < 0 || !S_ISBLK(st.st_mode)) {
		rpc_call_fail(call, RPC_FAILED_PRECONDITION, "not formatting \"%s\": not a block device (mount: %s)",
			      source, strerror(mount_error));
		return -ENOTBLK;
	}
	if (lock < 0)
		lock = open(source, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (lock < 0) {
		r = -errno;
		rpc_call_fail(call, RPC_FAILED_PRECONDITION, "not formatting \"%s\": %s (mount: %s)", source,
			      strerror(-r), strerror(mount_error));
		return r;
	}
	/* Exclusive now that a format is wanted (from the shared lock the mount
	 * attempt held, if any: flock converts it, and refuses while another
	 * holds it, e.g. udev probing the new disk). */
	if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		if (r == -EWOULDBLOCK)
			rpc_call_fail(call, RPC_FAILED_PRECONDITION,
				      "not formatting \"%s\": it is being formatted or probed (the device is locked, "
				      "by an earlier mkfs_if_needed or another program); mount failed: %s",
				      source, strerror(mount_error));
		else
			rpc_call_fail(call, RPC_INTERNAL, "not formatting \"%s\": could not lock it: %s", source,
				      strerror(-r));
		return r;
	}
	/* O_EXCL on a block device: fails while it is mounted or in use. */
	fd = open(source, O_RDONLY | O_EXCL | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0) {
		r = -errno;
		rpc_call_fail(call, RPC_FAILED_PRECONDITION, "not formatting \"%s\": %s (mount: %s)", source,
			      strerror(-r), strerror(mount_error));
		return r;
	}
	r = fs_probe(fd, size, &what);
	if (r < 0) {
		rpc_call_fail(call, RPC_INTERNAL, "not formatting \"%s\": could not read it: %s", source, strerror(-r));
		return r;
	}
	if (r > 0) {
		rpc_call_fail(call, RPC_FAILED_PRECONDITION,
			      "not formatting \"%s\": it is not blank (%s found); mount failed: %s", source, what,
			      strerror(mount_error));
		return -ENOTEMPTY;
	}
	return TAKE_FD(lock);
}

int maitred_mount_mkfs_and_retry(struct vmtools_storage *m, struct rpc_call *call, const VmTools__MountRequest *req,
				 int mount_error, int held_lock)
{
	_cleanup_close_ int held = held_lock;

	const char *peer = rpc_call_peer(call);
	struct spawn_params p;
	struct spawn_error se;
	struct mkfs_job *j;
	pid_t pid;
	int r;

	if (mount_error != EINVAL)
		return 0; /* not "no filesystem there": never format */
	/* mkfs is a program of the guest's: what it writes besides the
	 * device (lock files, logs) is not ours to know. */
	if (maitred_refuse_if_frozen(m->core, call))
		return 1;
	if (!plain_name(req->fstype)) {
		rpc_call_fail(call, RPC_INVALID_ARGUMENT, "fstype \"%.64s\": not a filesystem name for mkfs",
			      req->fstype);
		return 1;
	}
	_cleanup_close_ int lock = lock_blank(call, req->source, mount_error, TAKE_FD(held));
	if (lock < 0) {
		log_info("Mount from %s: \"%s\" on \"%s\": mount failed and the device is not formatted", peer,
			 ESCAPED(req->source), ESCAPED(req->target));
		return 1;
	}
	j = calloc(1, sizeof(*j));
	if (!j || !(j->source = strdup(req->source)) || !(j->target = strdup(req->target)) ||
	    !(j->fstype = strdup(req->fstype)) || !(j->options = strdup(req->options))) {
		mkfs_job_free(j);
		rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
		return 1;
	}
	j->call = call;
	snprintf(j->peer, sizeof(j->peer), "%s", peer);
	j->flags = req->mountflags;
	j->permissions = req->permissions;
	snprintf(j->mkfs, sizeof(j->mkfs), "mkfs.%s", req->fstype);

	/* The watch first: once mkfs runs nothing may fail. */
	r = loop_child_new(m->core->loop, &j->watch);
	if (r < 0) {
		rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "could not watch %s: %s", j->mkfs, strerror(-r));
		mkfs_job_free(j);
		return 1;
	}
	char *argv[] = { j->mkfs, j->source, NULL };
	spawn_params_init(&p);
	p.argv = argv;
	p.stdio_fds[0] = lock; /* mkfs holds the lock until it exits */
	r = spawn_process(&p, &pid, &se);
	if (r != 0) {
		int err = r < 0 ? -r : se.error;
		if (r == SPAWN_FAILED && se.stage == SPAWN_STAGE_EXEC && err == ENOENT)
			rpc_call_fail(call, RPC_FAILED_PRECONDITION,
				      "%s is not in the image: cannot format blank \"%s\" (mount: %s)", j->mkfs,
				      j->source, strerror(mount_error));
		else
			rpc_call_fail(call, RPC_INTERNAL, "could not run %s: %s", j->mkfs, strerror(err));
		log_info("Mount from %s: could not run %s for blank %s: %s", peer, j->mkfs, ESCAPED(j->source),
			 strerror(err));
		mkfs_job_free(j);
		return 1;
	}
	loop_child_watch(j->watch, pid, on_mkfs_exit, j);
	j->pid = pid;
	j->m = m;
	LIST_PREPEND(m->mkfs_jobs, j);
	log_info("Mount from %s: %s is blank; running %s (pid %d)", peer, ESCAPED(j->source), j->mkfs, (int)pid);
	rpc_call_set_cancel(call, on_mkfs_cancel, j);
	return 1;
}
