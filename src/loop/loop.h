/* A single-threaded epoll event loop: descriptors, monotonic timers,
 * signals (through one signalfd) and child processes (reaped completely on
 * every SIGCHLD, dispatched to whoever watches the pid).
 *
 * Sources may be freed from any callback, including their own; the memory
 * is released once the current dispatch round is over. */
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

typedef void (*loop_io_fn)(struct loop_io *io, int fd, uint32_t events, void *userdata);
typedef void (*loop_timer_fn)(struct loop_timer *t, void *userdata);
typedef void (*loop_signal_fn)(struct loop *l, int signo, void *userdata);
/* status is as from waitpid(). */
typedef void (*loop_child_fn)(pid_t pid, int status, void *userdata);
typedef void (*loop_orphan_fn)(struct loop *l, pid_t pid, int status, void *userdata);

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
void loop_timer_free(struct loop_timer *t);

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
