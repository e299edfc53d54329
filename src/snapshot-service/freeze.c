/* Freeze and Thaw: a state machine on the loop (service.h: enum
 * snap_state), one blocking step at a time in a worker child:
 *
 *   THAWED --Freeze--> FREEZING: sync, then FIFREEZE each filesystem,
 *       children before parents --all frozen--> FROZEN (automatic thaw
 *       armed) --Thaw or the timer--> THAWING: FITHAW each, in reverse
 *       --done--> THAWED.
 *   FREEZING --a Thaw, the Freeze call's end, a FIFREEZE that fails-->
 *       the step in progress finishes, then THAWING.
 *
 * The core's frozen flag is set from the Freeze until the thaw is done, so
 * that no call of maitred writes to a disk meanwhile. Thaw calls that come
 * while a thaw runs are answered with it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/worker.h"
#include "base/escape.h"
#include "base/list.h"
#include "base/log.h"
#include "base/read-file.h"
#include "base/time-util.h"
#include "mounts.h"
#include "service.h"
#include "snapshot.pb-c.h"

#define DEFAULT_TIMEOUT_S 60
#define MAX_TIMEOUT_S 600
#define MOUNTINFO_MAX (4 << 20)

struct snap_thaw_call {
	struct snap_thaw_call *prev, *next;
	struct snapshot_service *owner;
	struct rpc_call *call;
};

/* The sync before the freezes, of the filesystems to freeze only
 * (syncfs): a maitred that --freeze-below limits must not sync its host's
 * disks. In the worker child, which kept no descriptor: each mount point
 * is opened again. The first error is the answer, after every one. */
static int do_sync(void *arg)
{
	const struct snap_freeze *fz = arg;
	int r = 0;

	for (size_t i = 0; i < fz->n_fs; i++) {
		int fd = open(fz->fs[i].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || syncfs(fd) < 0)
			r = r ? r : -errno;
		if (fd >= 0)
			close(fd);
	}
	return r;
}

static int do_freeze(void *arg)
{
	return ioctl(*(int *)arg, FIFREEZE, 0) < 0 ? -errno : 0;
}

static int do_thaw(void *arg)
{
	return ioctl(*(int *)arg, FITHAW, 0) < 0 ? -errno : 0;
}

static int rpc_code_of(int error)
{
	switch (error) {
	case -EPERM:
	case -EACCES: return RPC_PERMISSION_DENIED;
	case -EBUSY:
	case -EROFS: return RPC_FAILED_PRECONDITION;
	case -ENOMEM: return RPC_RESOURCE_EXHAUSTED;
	default: return RPC_INTERNAL;
	}
}

static void fs_list_free(struct snap_freeze *fz)
{
	for (size_t i = 0; i < fz->n_fs; i++) {
		free(fz->fs[i].path);
		safe_close(fz->fs[i].fd);
	}
	free(fz->fs);
	fz->fs = NULL;
	fz->n_fs = 0;
	free(fz->answer);
	fz->answer = NULL;
	fz->n_answer = 0;
	free(fz->error_path);
	free(fz->thaw_error_path);
	fz->error_path = fz->thaw_error_path = NULL;
	fz->error = fz->thaw_error = 0;
}

static void set_error(int *slot, char **path_slot, int error, const char *path)
{
	if (*slot)
		return;
	*slot = error;
	*path_slot = strdup(path);
}

/* A block device's number, for snap_mounts_select(). */
static int block_device(const char *source, dev_t *ret, void *userdata)
{
	struct stat st;

	if (strncmp(source, "/dev/", 5) != 0 || stat(source, &st) < 0 || !S_ISBLK(st.st_mode))
		return -ENOTBLK;
	*ret = st.st_rdev;
	return 0;
}

/* The mount table whole: a larger one than MOUNTINFO_MAX is refused
 * rather than half read. */
static int read_mountinfo(char **ret)
{
	_cleanup_free_ char *text = NULL;
	int r = read_file_head("/proc/self/mountinfo", MOUNTINFO_MAX, &text, NULL);

	if (r < 0)
		return r;
	if (r > 0)
		return -EFBIG;
	*ret = TAKE_PTR(text);
	return 0;
}

/* The filesystems to freeze, each with its mount point open. A mount
 * point that is gone, or hidden under a later mount (fstat() names
 * another device), is left out. */
static int collect(struct snapshot_service *s)
{
	struct snap_freeze *fz = &s->fz;
	_cleanup_free_ char *text = NULL;
	struct snap_mount *m = NULL;
	size_t n = 0;
	int r = read_mountinfo(&text);

	if (r >= 0)
		r = snap_mounts_select(text, s->core->opts.freeze_below, block_device, NULL, &m, &n);
	if (r < 0)
		return r;
	fz->fs = calloc(n ? n : 1, sizeof(*fz->fs));
	fz->answer = calloc(n ? n : 1, sizeof(char *));
	if (!fz->fs || !fz->answer) {
		snap_mounts_free(m, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		int fd = open(m[i].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || fstat(fd, &st) < 0 || st.st_dev != m[i].dev) {
			log_info("Freeze: skipping %s: %s", ESCAPED(m[i].path),
				 fd < 0 ? strerror(errno) : "another filesystem is mounted over it");
			safe_close(fd);
			continue;
		}
		fz->fs[fz->n_fs++] = (struct snap_fs){ .path = TAKE_PTR(m[i].path), .fd = fd };
	}
	snap_mounts_free(m, n);
	return 0;
}

static void on_step_done(int result, void *userdata);

static int start_step(struct snapshot_service *s, worker_fn fn, int *fd)
{
	return worker_start(s->core->loop, fn, fd, fd ? *fd : -1, on_step_done, s, &s->fz.worker);
}

static void finish_thaw(struct snapshot_service *s);

/* THAWING: the next filesystem still frozen, from the last one frozen
 * backwards; the end when there is none. */
static void thaw_next(struct snapshot_service *s)
{
	struct snap_freeze *fz = &s->fz;

	while (fz->step > 0) {
		struct snap_fs *f = &fz->fs[fz->step - 1];
		if (!f->frozen) {
			fz->step--;
			continue;
		}
		int r = start_step(s, do_thaw, &f->fd);
		if (r >= 0)
			return;
		/* No child to run it in: FITHAW does not wait for the disk,
		 * so it is done here rather than leaving the disk frozen. */
		log_warning_errno(r, "Thaw: could not start a worker; thawing %s in maitred", ESCAPED(f->path));
		r = ioctl(f->fd, FITHAW, 0) < 0 ? -errno : 0;
		on_step_done(r, s);
		return;
	}
	finish_thaw(s);
}

static void begin_thaw(struct snapshot_service *s, const char *why)
{
	struct snap_freeze *fz = &s->fz;

	fz->state = SNAP_THAWING;
	fz->thaw_why = why;
	fz->step = fz->n_fs;
	fz->n_answer = 0;
	if (fz->auto_thaw)
		loop_timer_set(fz->auto_thaw, USEC_INFINITY);
	log_info("Thaw: %s", why);
	thaw_next(s);
}

static void send_paths(struct rpc_call *call, bool frozen, char **paths, size_t n)
{
	Valet__V1__FreezeResponse fr = VALET__V1__FREEZE_RESPONSE__INIT;
	Valet__V1__ThawResponse tr = VALET__V1__THAW_RESPONSE__INIT;

	if (frozen) {
		fr.n_frozen = n;
		fr.frozen = paths;
		rpc_call_reply(call, &fr.base);
	} else {
		tr.n_thawed = n;
		tr.thawed = paths;
		rpc_call_reply(call, &tr.base);
	}
}

static void fail_error(struct rpc_call *call, const char *what, int error, const char *path)
{
	if (error == -EBUSY && strcmp(what, "freeze") == 0)
		rpc_call_fail(call, RPC_FAILED_PRECONDITION, "could not freeze %s: it is frozen already (by another program?)",
			      path);
	else
		rpc_call_fail(call, rpc_code_of(error), "could not %s %s: %s", what, path, strerror(-error));
}

/* A Thaw call still waiting for the thaw's end, out of the list and no
 * longer cancellable: the caller answers it, or drops it. NULL when none
 * waits. */
static struct rpc_call *take_thaw_call(struct snap_freeze *fz)
{
	struct snap_thaw_call *t = fz->thaw_calls;
	struct rpc_call *call;

	if (!t)
		return NULL;
	call = t->call;
	LIST_REMOVE(fz->thaw_calls, t);
	free(t);
	rpc_call_set_cancel(call, NULL, NULL);
	return call;
}

static void finish_thaw(struct snapshot_service *s)
{
	struct snap_freeze *fz = &s->fz;
	char **thawed = fz->answer;
	size_t n = fz->n_answer;
	struct rpc_call *call;

	log_info("Thaw (%s): %zu filesystem%s thawed, %.3f s after the Freeze%s%s", fz->thaw_why, n,
		 n == 1 ? "" : "s", (double)(now_usec() - fz->began_usec) / 1e6, fz->thaw_error ? "; failed: " : "",
		 fz->thaw_error ? strerror(-fz->thaw_error) : "");
	fz->state = SNAP_THAWED;
	s->core->frozen = false;
	/* The Freeze that never got to FROZEN: its failure, or why it was
	 * undone. */
	if (fz->freeze_call) {
		call = TAKE_PTR(fz->freeze_call);
		rpc_call_set_cancel(call, NULL, NULL);
		if (fz->error)
			fail_error(call, "freeze", fz->error, fz->error_path ? fz->error_path : "?");
		else
			rpc_call_fail(call, RPC_ABORTED, "the Freeze was undone: %s", fz->abort_why);
	}
	while ((call = take_thaw_call(fz))) {
		if (fz->thaw_error)
			fail_error(call, "thaw", fz->thaw_error, fz->thaw_error_path ? fz->thaw_error_path : "?");
		else
			send_paths(call, false, thawed, n);
	}
	fz->abort = false;
	fz->abort_why = NULL;
	fs_list_free(fz);
}

/* FREEZING: the next filesystem, or FROZEN. */
static void freeze_next(struct snapshot_service *s)
{
	struct snap_freeze *fz = &s->fz;
	size_t n = 0;

	if (fz->abort)
		return begin_thaw(s, fz->abort_why);
	if (fz->step < fz->n_fs) {
		int r = start_step(s, do_freeze, &fz->fs[fz->step].fd);
		if (r < 0) {
			set_error(&fz->error, &fz->error_path, r, fz->fs[fz->step].path);
			fz->abort_why = "a FIFREEZE failed";
			begin_thaw(s, fz->abort_why);
		}
		return;
	}
	for (size_t i = 0; i < fz->n_fs; i++)
		if (fz->fs[i].frozen)
			fz->answer[n++] = fz->fs[i].path;
	struct rpc_call *call = TAKE_PTR(fz->freeze_call);
	log_info("Freeze: %zu filesystem%s frozen in %.3f s; automatic thaw in %u s", n, n == 1 ? "" : "s",
		 (double)(now_usec() - fz->began_usec) / 1e6, fz->timeout_s);
	if (n == 0) {
		/* Nothing to keep frozen: no thaw to wait for either. */
		fz->state = SNAP_THAWED;
		s->core->frozen = false;
	} else {
		fz->state = SNAP_FROZEN;
		loop_timer_set(fz->auto_thaw, now_usec() + (uint64_t)fz->timeout_s * USEC_PER_SEC);
	}
	rpc_call_set_cancel(call, NULL, NULL);
	send_paths(call, true, fz->answer, n);
	if (n == 0)
		fs_list_free(fz);
}

static void on_step_done(int result, void *userdata)
{
	struct snapshot_service *s = userdata;
	struct snap_freeze *fz = &s->fz;

	worker_free(TAKE_PTR(fz->worker));
	if (fz->state == SNAP_FREEZING) {
		if (fz->syncing) {
			/* FIFREEZE syncs each filesystem again and reports
			 * what fails then. */
			if (result < 0)
				log_warning("Freeze: sync: %s; freezing anyway", strerror(-result));
			fz->syncing = false;
			fz->step = 0;
			return freeze_next(s);
		}
		struct snap_fs *f = &fz->fs[fz->step];
		if (result == 0)
			f->frozen = true;
		else if (result == -EOPNOTSUPP)
			log_info("Freeze: %s cannot be frozen (its filesystem has no FIFREEZE); left as it is",
				 ESCAPED(f->path));
		else {
			log_warning("Freeze: could not freeze %s: %s", ESCAPED(f->path), strerror(-result));
			set_error(&fz->error, &fz->error_path, result, f->path);
			fz->abort = true;
			fz->abort_why = "a FIFREEZE failed";
		}
		fz->step++;
		return freeze_next(s);
	}
	/* THAWING */
	struct snap_fs *f = &fz->fs[fz->step - 1];
	f->frozen = false;
	if (result == 0)
		fz->answer[fz->n_answer++] = f->path;
	else if (result == -EINVAL)
		/* The kernel's "not frozen": someone thawed it (fsfreeze -u). */
		log_info("Thaw: %s was not frozen any more", ESCAPED(f->path));
	else {
		log_warning("Thaw: could not thaw %s: %s", ESCAPED(f->path), strerror(-result));
		set_error(&fz->thaw_error, &fz->thaw_error_path, result, f->path);
	}
	fz->step--;
	thaw_next(s);
}

static void on_auto_thaw(struct loop_timer *t, void *userdata)
{
	struct snapshot_service *s = userdata;

	if (s->fz.state == SNAP_FROZEN)
		begin_thaw(s, "the Freeze's timeout passed without a Thaw");
}

static void on_freeze_cancel(struct rpc_call *call, void *userdata)
{
	struct snapshot_service *s = userdata;

	/* The host gave up (deadline, reset): what was frozen is thawed
	 * once the step in progress ends. */
	s->fz.freeze_call = NULL;
	s->fz.abort = true;
	if (!s->fz.abort_why)
		s->fz.abort_why = "the Freeze call ended before its answer";
}

void snap_freeze(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const Valet__V1__FreezeRequest *req = (const Valet__V1__FreezeRequest *)request;
	struct snapshot_service *s = userdata;
	struct snap_freeze *fz = &s->fz;
	uint32_t timeout = req->timeout_seconds ? req->timeout_seconds : DEFAULT_TIMEOUT_S;
	const char *peer = rpc_call_peer(call);
	int r;

	if (req->timeout_seconds > MAX_TIMEOUT_S) {
		log_info("Freeze from %s: INVALID_ARGUMENT: timeout_seconds %u", peer, req->timeout_seconds);
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "timeout_seconds %u: at most %d", req->timeout_seconds,
				     MAX_TIMEOUT_S);
	}
	if (fz->state == SNAP_THAWING) {
		log_info("Freeze from %s: UNAVAILABLE: a thaw is in progress", peer);
		return rpc_call_fail(call, RPC_UNAVAILABLE, "the file systems are being thawed; try again");
	}
	if (fz->state != SNAP_THAWED) {
		log_info("Freeze from %s: ALREADY_EXISTS", peer);
		return rpc_call_fail(call, RPC_ALREADY_EXISTS, "%s",
				     fz->state == SNAP_FROZEN ? "the file systems are frozen already: Thaw first"
							      : "a Freeze is in progress");
	}
	if (!fz->auto_thaw) {
		r = loop_add_timer(s->core->loop, USEC_INFINITY, on_auto_thaw, s, &fz->auto_thaw);
		if (r < 0)
			return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	r = collect(s);
	if (r < 0) {
		fs_list_free(fz);
		log_info("Freeze from %s: could not list the mounted filesystems: %s", peer, strerror(-r));
		return rpc_call_fail(call, rpc_code_of(r), "could not list the mounted filesystems: %s", strerror(-r));
	}
	fz->syncing = true;
	fz->step = fz->n_fs;
	r = worker_start(s->core->loop, do_sync, fz, -1, on_step_done, s, &fz->worker);
	if (r < 0) {
		fs_list_free(fz);
		log_info("Freeze from %s: could not start a worker: %s", peer, strerror(-r));
		return rpc_call_fail(call, rpc_code_of(r), "could not start the sync: %s", strerror(-r));
	}
	fz->state = SNAP_FREEZING;
	fz->timeout_s = timeout;
	fz->began_usec = now_usec();
	fz->freeze_call = call;
	fz->n_freezes++;
	s->core->frozen = true;
	log_info("Freeze from %s: sync, then %zu filesystem%s (automatic thaw after %u s)", peer, fz->n_fs,
		 fz->n_fs == 1 ? "" : "s", timeout);
	rpc_call_set_cancel(call, on_freeze_cancel, s);
}

static void on_thaw_cancel(struct rpc_call *call, void *userdata)
{
	struct snap_thaw_call *t = userdata;

	/* The thaw goes on; only this answer is dropped. */
	LIST_REMOVE(t->owner->fz.thaw_calls, t);
	free(t);
}

void snap_thaw(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	struct snapshot_service *s = userdata;
	struct snap_freeze *fz = &s->fz;
	struct snap_thaw_call *t;

	if (fz->state == SNAP_THAWED) {
		log_info("Thaw from %s: nothing is frozen", rpc_call_peer(call));
		return send_paths(call, false, NULL, 0);
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
	*t = (struct snap_thaw_call){ .owner = s, .call = call };
	LIST_PREPEND(fz->thaw_calls, t);
	rpc_call_set_cancel(call, on_thaw_cancel, t);
	if (fz->state == SNAP_FROZEN)
		begin_thaw(s, "a Thaw call");
	else if (fz->state == SNAP_FREEZING && !fz->abort) {
		fz->abort = true;
		fz->abort_why = "a Thaw came during the Freeze";
	}
	/* THAWING, or FREEZING: answered when the thaw ends. */
}

void snap_thaw_now(struct snapshot_service *s, bool answer)
{
	struct snap_freeze *fz = &s->fz;
	struct rpc_call *call;

	if (fz->state == SNAP_THAWED)
		return;
	/* A FIFREEZE still running is waited for, so that it cannot freeze
	 * after the thaw below; then the worker is forgotten. */
	if (fz->worker && fz->state == SNAP_FREEZING && !fz->syncing)
		(void)waitpid(worker_pid(fz->worker), NULL, 0);
	worker_free(TAKE_PTR(fz->worker));
	if (fz->auto_thaw)
		loop_timer_set(fz->auto_thaw, USEC_INFINITY);
	fz->n_answer = 0;
	for (size_t i = fz->n_fs; i > 0; i--) {
		struct snap_fs *f = &fz->fs[i - 1];
		/* FREEZING: the one being frozen may be frozen by now. */
		if (f->frozen || (fz->state == SNAP_FREEZING && !fz->syncing && i - 1 == fz->step)) {
			if (ioctl(f->fd, FITHAW, 0) == 0) {
				log_info("Thaw (maitred ends): %s thawed", ESCAPED(f->path));
				fz->answer[fz->n_answer++] = f->path;
			}
			f->frozen = false;
		}
	}
	fz->state = SNAP_THAWED;
	s->core->frozen = false;
	/* The calls still waiting: answered while the server still sends
	 * (the orderly end), else only forgotten (the loop is over). */
	if (fz->freeze_call) {
		call = TAKE_PTR(fz->freeze_call);
		rpc_call_set_cancel(call, NULL, NULL);
		if (answer)
			rpc_call_fail(call, RPC_ABORTED, "the Freeze was undone: maitred is stopping");
	}
	while ((call = take_thaw_call(fz))) {
		if (answer)
			send_paths(call, false, fz->answer, fz->n_answer);
	}
	fz->abort = false;
	fz->abort_why = NULL;
	fs_list_free(fz);
}

void snap_freeze_free(struct snapshot_service *s)
{
	struct snap_freeze *fz = &s->fz;

	snap_thaw_now(s, false);
	loop_timer_free(TAKE_PTR(fz->auto_thaw));
}
