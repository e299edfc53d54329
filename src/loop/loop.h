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
 * Ownership: whoever creates a source (I/O, timer, child watch, deferred)
 * owns it and frees it, whatever its state: armed or not, fired, pending,
 * watching or not. The loop never frees a source behind its owner's back;
 * it only disarms: a one-shot timer that fired is unarmed, a deferred
 * source that ran is idle, a child watch that fired (its pid reaped) is
 * inactive. Each stays allocated until its owner frees it, or arms or
 * starts it again. A source may be freed from any callback, its own
 * included: it is never called again, and its memory is released at step
 * 6 (at once when freed outside loop_run()).
 *
 * loop_free() detaches the sources still there: it disarms each and cuts
 * it from the loop, and their memory stays their owners'. Freeing one
 * afterwards is safe (and needed: it releases the memory); nothing else
 * may be done with it then (arming does nothing, loop_io_set_events()
 * fails with -ESTALE).
 *
 * Children: the loop reaps every child (waitpid(-1)) on each SIGCHLD, and
 * only there. A reaped pid that nothing watches is an orphan: it goes to
 * the orphan handler and is forgotten (no status is kept for a watch that
 * might come later: once pid numbers wrap, that watch would be for a new
 * process that got the same number). So watch a child before the loop runs
 * again after it was started: at once, from the callback or code that
 * started it. A child that exits before that is still reported to its
 * watch, because the loop has not reaped it yet. */
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
/* Frees the loop; the sources still there are detached (see above), and
 * no fd is closed. Not from one of the loop's own callbacks. */
void loop_free(struct loop *l);
/* In a forked child: drops the loop inherited from the parent without
 * touching the epoll set the two processes share. The sources' memory goes
 * too: their owners in the child drop their copies without freeing them. */
void loop_free_after_fork(struct loop *l);
DEFINE_FREEP(struct loop, loop_free)

/* Runs until loop_exit(); returns the code given there. */
int loop_run(struct loop *l);
void loop_exit(struct loop *l, int code);
bool loop_is_running(const struct loop *l);
/* True while a round's callbacks run (after loop_exit() too, until the
 * round ends): an owner that must not free memory a caller up the stack
 * still uses defers the free then. */
bool loop_is_dispatching(const struct loop *l);

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

/* Calls fn once when pid is reaped (step 3). pid must be a child started
 * since the loop last reaped, i.e. watched before the loop runs again (see
 * above). The watch (*ret, required) is then inactive and still the
 * caller's: free it with loop_child_free(), from fn or later. */
int loop_watch_child(struct loop *l, pid_t pid, loop_child_fn fn, void *userdata, struct loop_child **ret);
/* The same in two steps, for callers that must not fail once the child
 * exists: allocate the watch first, then start it (which cannot fail).
 * A watch that is inactive (new, or fired) may be started again for
 * another pid; started while watching, it watches the new pid instead. */
int loop_child_new(struct loop *l, struct loop_child **ret);
void loop_child_watch(struct loop_child *c, pid_t pid, loop_child_fn fn, void *userdata);
/* Stops watching (if started) and frees. Accepts NULL. */
void loop_child_free(struct loop_child *c);
/* Called for every reaped pid nobody watches (orphans, for PID 1); such a
 * pid is then forgotten. */
void loop_set_orphan_handler(struct loop *l, loop_orphan_fn fn, void *userdata);
/* Number of watched children still alive. */
unsigned loop_children_count(const struct loop *l);
