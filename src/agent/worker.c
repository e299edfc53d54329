#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/macro.h"

struct worker {
	pid_t pid;
	struct loop_child *watch;
	worker_done_fn done;
	void *userdata;
};

static void worker_exited(pid_t pid, int status, void *userdata)
{
	struct worker *w = userdata;
	int r = WIFEXITED(status) ? -WEXITSTATUS(status) : -EINTR;

	/* The watch is inactive now; worker_free() frees it. */
	w->done(r, w->userdata);
}

int worker_start(struct loop *l, worker_fn fn, void *arg, int keep_fd, worker_done_fn done, void *userdata,
		 struct worker **ret)
{
	struct worker *w = calloc(1, sizeof(*w));
	pid_t pid;
	int r;

	if (!w)
		return -ENOMEM;
	/* The watch first: once the child exists nothing may fail. */
	r = loop_child_new(l, &w->watch);
	if (r < 0) {
		free(w);
		return r;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		loop_child_free(w->watch);
		free(w);
		return r;
	}
	if (pid == 0) {
		if (keep_fd > 3)
			(void)close_range(3, (unsigned)keep_fd - 1, 0);
		(void)close_range(keep_fd >= 3 ? (unsigned)keep_fd + 1 : 3, ~0u, 0);
		r = fn(arg);
		_exit(r < 0 ? (-r & 0xff) : 0);
	}
	w->pid = pid;
	w->done = done;
	w->userdata = userdata;
	/* Before the loop runs again: a child that is already gone has not
	 * been reaped yet. */
	loop_child_watch(w->watch, pid, worker_exited, w);
	*ret = w;
	return 0;
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	loop_child_free(w->watch);
	free(w);
}

pid_t worker_pid(const struct worker *w)
{
	return w->pid;
}
