/* One blocking system call (sync(2), a resize ioctl) kept off maitred's
 * single-threaded loop: a forked child makes the call and _exit()s with its
 * errno (0: success); the loop's child watch reports it.
 *
 * Not spawn_process(): nothing is executed, and the call needs the state
 * the parent prepared (open fds). The child runs no handler, allocates
 * nothing, and only calls fn then _exit(). It closes every descriptor but
 * 0-2 and keep_fd first, so that no connection or listener of the parent
 * stays open for as long as the call takes. Its signals stay blocked as in
 * the parent, so it finishes its call unless SIGKILLed (power-off). */
#pragma once

#include <sys/types.h>

#include "loop/loop.h"

/* fn returns 0 or -errno. done gets the child's -errno (or -EINTR when it
 * was killed), once; the worker stays the caller's, to free with
 * worker_free() (from done, or later). Freed while the child runs, the
 * child is reaped by the loop as an orphan: an owner that must account for
 * its child keeps the worker until done. */
typedef int (*worker_fn)(void *arg);
typedef void (*worker_done_fn)(int result, void *userdata);

struct worker;
int worker_start(struct loop *l, worker_fn fn, void *arg, int keep_fd, worker_done_fn done, void *userdata,
		 struct worker **ret);
/* Forgets the worker (and its child watch): done is not called any more.
 * Accepts NULL. */
void worker_free(struct worker *w);
pid_t worker_pid(const struct worker *w);
