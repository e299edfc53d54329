/* A single-threaded epoll event loop: descriptors, monotonic timers,
 * signals (through one signalfd), child processes (reaped completely on
 * every SIGCHLD, dispatched to whoever watches the pid) and deferred
 * sources (work to do once the current round's events are handled).
 *
 * One round of loop_run():
 *   1. wait in epoll_wait() (not at all if a child watch or a deferred
 *      source is pending, or a timer is due);
 *   2. I/O callbacks, in the order epoll reported them; signals are I/O
 *      too (the signalfd), and SIGCHLD reaps here;
 *   3. child watchers of the pids reaped;
 *   4. timers whose deadline has passed, earliest first (one armed from
 *      here with a passed deadline runs in this round too);
 *   5. deferred sources scheduled before this step began, in the order
 *      they were scheduled (one scheduled from step 5 runs next round,
 *      without waiting in step 1);
 *   6. the memory of the sources freed during the round is released.
 * After loop_exit(), step 2 stops at once; steps 3 to 6 still run.
 *
 * Any source (I/O, timer, child watch, deferred) may be freed from any
 * callback, including its own: it is never called again, and its memory is
 * released at step 6. Freed outside loop_run(), it is released at once. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/types.h>

#include "base/macro.h"

struct loop;
struct loop_io;
struct loop_timer;
struct loop_child;
struct loop_defer;

typedef void (*loop_io_fn)(struct loop_io *io, int fd, uint32_t events, void *userdata);
typedef void (*loop_timer_fn)(struct loop_timer *t, void *userdata);
typedef void (*loop_signal_fn)(struct loop *l, int signo, void *userdata);
/* status is as from waitpid(). */
typedef void (*loop_child_fn)(pid_t pid, int status, void *userdata);
typedef void (*loop_orphan_fn)(struct loop *l, pid_t pid, int status, void *userdata);
typedef void (*loop_defer_fn)(struct loop_defer *d, void *userdata);

int loop_new(struct loop **ret);
/* Frees the loop with every source still registered (closing no fd). */
void loop_free(struct loop *l);
/* In a forked child: drops the loop inherited from the parent without
 * touching the epoll set the two processes share. */
void loop_free_after_fork(struct loop *l);
DEFINE_FREEP(struct loop, loop_free)

/* Runs until loop_exit(); returns the code given there. */
int loop_run(struct loop *l);
void loop_exit(struct loop *l, int code);
bool loop_is_running(const struct loop *l);

int loop_add_io(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *userdata, struct loop_io **ret);
int loop_io_set_events(struct loop_io *io, uint32_t events);
/* Does not close the descriptor. Accepts NULL. */
void loop_io_free(struct loop_io *io);

/* deadline is absolute, on the now_usec() clock. One-shot. A timer set to
 * USEC_INFINITY never fires: a way to allocate one before it is needed. */
int loop_add_timer(struct loop *l, uint64_t deadline, loop_timer_fn fn, void *userdata, struct loop_timer **ret);
void loop_timer_set(struct loop_timer *t, uint64_t deadline);
/* Accepts NULL. */
void loop_timer_free(struct loop_timer *t);

/* A deferred source: created idle; each loop_defer_schedule() makes it
 * run once at step 5 of the current round (or of the next round, when
 * called outside loop_run() or from step 5). Scheduling one already
 * pending does nothing. Allocate it early, and scheduling cannot fail. */
int loop_add_defer(struct loop *l, loop_defer_fn fn, void *userdata, struct loop_defer **ret);
void loop_defer_schedule(struct loop_defer *d);
/* Unschedules (if pending); the source stays allocated. */
void loop_defer_cancel(struct loop_defer *d);
/* Accepts NULL. */
void loop_defer_free(struct loop_defer *d);

/* Routes a signal through the loop (it is blocked and read from a
 * signalfd). One handler per signal. SIGCHLD is the loop's own. */
int loop_add_signal(struct loop *l, int signo, loop_signal_fn fn, void *userdata);

/* Calls fn once when pid is reaped. A pid reaped before anybody watched it
 * is remembered, and the watcher is then called from the next round. */
int loop_watch_child(struct loop *l, pid_t pid, loop_child_fn fn, void *userdata, struct loop_child **ret);
/* The same in two steps, for callers that must not fail once the child
 * exists: allocate the watch first, then start it (which cannot fail). */
int loop_child_new(struct loop *l, struct loop_child **ret);
void loop_child_watch(struct loop_child *c, pid_t pid, loop_child_fn fn, void *userdata);
/* Stops watching (if started) and frees. Accepts NULL. */
void loop_child_free(struct loop_child *c);
/* Called for every reaped pid nobody watches (orphans, for PID 1). */
void loop_set_orphan_handler(struct loop *l, loop_orphan_fn fn, void *userdata);
/* Number of watched children still alive. */
unsigned loop_children_count(const struct loop *l);
