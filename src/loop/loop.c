#include "loop.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "base/list.h"
#include "base/time-util.h"

enum loop_source_kind {
	LOOP_SOURCE_IO,
	LOOP_SOURCE_TIMER,
	LOOP_SOURCE_CHILD,
	LOOP_SOURCE_DEFER,
};

/* The first member of every source. Every source of a loop is on its
 * list of sources, whatever its state (armed or not, fired, pending), so
 * that loop_free() can detach each one. A source freed while the loop
 * dispatches waits on the loop's dead list until the round is over, so
 * that whatever still points at it in this round (an epoll event, a
 * dispatch walk) reads valid memory. */
struct loop_source {
	struct loop *loop; /* NULL once loop_free() detached it */
	enum loop_source_kind kind;
	struct loop_source *all_prev, *all_next;
	struct loop_source *next_dead;
};

struct loop_io {
	struct loop_source src;
	int fd;
	uint32_t events;
	loop_io_fn fn;
	void *userdata;
	bool dead;
};

struct loop_timer {
	struct loop_source src;
	uint64_t deadline;
	loop_timer_fn fn;
	void *userdata;
	bool armed;
	struct loop_timer *prev, *next;
};

struct loop_child {
	struct loop_source src;
	pid_t pid;
	int status;
	bool reaped;
	bool watching; /* on the loop's list of watched children */
	loop_child_fn fn;
	void *userdata;
	struct loop_child *prev, *next;
};

struct loop_defer {
	struct loop_source src;
	loop_defer_fn fn;
	void *userdata;
	bool pending; /* on the loop's pending list */
	uint64_t seq; /* when it was scheduled, for the round's cut-off */
	struct loop_defer *prev, *next;
};

struct loop_signal {
	loop_signal_fn fn;
	void *userdata;
};

struct loop {
	int epoll_fd;
	int signal_fd;
	struct loop_io *signal_io;
	sigset_t signals;
	sigset_t saved_mask;
	struct loop_signal handlers[_NSIG];

	struct loop_source *sources; /* every source, in any state */
	struct loop_timer *timers;   /* armed ones, sorted by deadline */
	struct loop_child *children; /* watched, not yet dispatched */
	unsigned n_children;
	/* Deferred sources scheduled, oldest first. */
	struct loop_defer *defers, *defers_tail;
	uint64_t defer_seq;
	struct loop_source *dead;
	bool dispatching;
	bool dispatch_pending_children;

	loop_orphan_fn orphan_fn;
	void *orphan_userdata;

	bool running;
	int exit_code;
};

static void loop_on_signalfd(struct loop_io *io, int fd, uint32_t events, void *userdata);

int loop_new(struct loop **ret)
{
	struct loop *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	l->signal_fd = -1;
	l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epoll_fd < 0) {
		r = negative_errno();
		free(l);
		return r;
	}
	sigemptyset(&l->signals);
	sigaddset(&l->signals, SIGCHLD);
	sigprocmask(SIG_BLOCK, &l->signals, &l->saved_mask);
	l->signal_fd = signalfd(-1, &l->signals, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->signal_fd < 0) {
		r = negative_errno();
		loop_free(l);
		return r;
	}
	r = loop_add_io(l, l->signal_fd, EPOLLIN, loop_on_signalfd, l, &l->signal_io);
	if (r < 0) {
		loop_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

static void source_link(struct loop *l, struct loop_source *s, enum loop_source_kind kind)
{
	s->loop = l;
	s->kind = kind;
	s->all_prev = NULL;
	s->all_next = l->sources;
	if (l->sources)
		l->sources->all_prev = s;
	l->sources = s;
}

static void source_unlink(struct loop_source *s)
{
	struct loop *l = s->loop;

	if (s->all_prev)
		s->all_prev->all_next = s->all_next;
	else
		l->sources = s->all_next;
	if (s->all_next)
		s->all_next->all_prev = s->all_prev;
	s->all_prev = s->all_next = NULL;
}

static void loop_release_dead(struct loop *l)
{
	while (l->dead) {
		struct loop_source *s = l->dead;
		l->dead = s->next_dead;
		free(s);
	}
}

/* The owner freed s (already disarmed): off the list of sources, and its
 * memory released now, or at the end of the round when the loop is
 * dispatching. A source detached by loop_free() is released at once. */
static void loop_source_release(struct loop_source *s)
{
	struct loop *l = s->loop;

	if (!l) {
		free(s);
		return;
	}
	source_unlink(s);
	if (!l->dispatching) {
		free(s);
		return;
	}
	s->next_dead = l->dead;
	l->dead = s;
}

static void io_disarm(struct loop_io *io);
static void timer_unlink(struct loop_timer *t);
static void child_unwatch(struct loop_child *c);

/* Disarms s and cuts it from the loop; the memory stays its owner's. */
static void source_detach(struct loop_source *s)
{
	switch (s->kind) {
	case LOOP_SOURCE_IO: io_disarm((struct loop_io *)s); break;
	case LOOP_SOURCE_TIMER: timer_unlink((struct loop_timer *)s); break;
	case LOOP_SOURCE_CHILD: child_unwatch((struct loop_child *)s); break;
	case LOOP_SOURCE_DEFER: loop_defer_cancel((struct loop_defer *)s); break;
	}
	source_unlink(s);
	s->loop = NULL;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	/* The signalfd's source is the loop's own; the owners free theirs,
	 * before or after this. */
	loop_io_free(TAKE_PTR(l->signal_io));
	while (l->sources)
		source_detach(l->sources);
	l->dispatching = false;
	loop_release_dead(l);
	safe_close(l->signal_fd);
	safe_close(l->epoll_fd);
	sigprocmask(SIG_SETMASK, &l->saved_mask, NULL);
	free(l);
}

void loop_free_after_fork(struct loop *l)
{
	if (!l)
		return;
	safe_close(l->epoll_fd);
	l->epoll_fd = -1;
	loop_io_free(TAKE_PTR(l->signal_io));
	/* The owners in this process have dropped their copies without
	 * freeing the sources: nobody will, so the memory goes here. */
	while (l->sources) {
		struct loop_source *s = l->sources;
		source_detach(s);
		free(s);
	}
	loop_free(l);
}

void loop_exit(struct loop *l, int code)
{
	l->running = false;
	l->exit_code = code;
}

bool loop_is_running(const struct loop *l)
{
	return l->running;
}

bool loop_is_dispatching(const struct loop *l)
{
	return l->dispatching;
}

int loop_add_io(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *userdata, struct loop_io **ret)
{
	struct loop_io *io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	*io = (struct loop_io){ .fd = fd, .events = events, .fn = fn, .userdata = userdata };
	struct epoll_event ev = { .events = events, .data.ptr = io };
	if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = negative_errno();
		free(io);
		return r;
	}
	source_link(l, &io->src, LOOP_SOURCE_IO);
	*ret = io;
	return 0;
}

int loop_io_set_events(struct loop_io *io, uint32_t events)
{
	if (!io->src.loop)
		return -ESTALE;
	if (io->events == events)
		return 0;
	struct epoll_event ev = { .events = events, .data.ptr = io };
	if (epoll_ctl(io->src.loop->epoll_fd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return negative_errno();
	io->events = events;
	return 0;
}

static void io_disarm(struct loop_io *io)
{
	if (io->dead)
		return;
	(void)epoll_ctl(io->src.loop->epoll_fd, EPOLL_CTL_DEL, io->fd, NULL);
	io->dead = true;
}

void loop_io_free(struct loop_io *io)
{
	if (!io)
		return;
	if (io->src.loop) {
		if (io->dead)
			return; /* freed already, in this round */
		io_disarm(io);
	}
	loop_source_release(&io->src);
}

static void timer_unlink(struct loop_timer *t)
{
	if (!t->armed)
		return;
	LIST_REMOVE(t->src.loop->timers, t);
	t->armed = false;
}

void loop_timer_set(struct loop_timer *t, uint64_t deadline)
{
	struct loop *l = t->src.loop;

	if (!l)
		return;
	struct loop_timer **pos = &l->timers, *prev = NULL;
	/* Connections re-arm theirs after every event: skip the walk. */
	if (t->armed && t->deadline == deadline)
		return;
	timer_unlink(t);
	t->deadline = deadline;
	while (*pos && (*pos)->deadline <= deadline) {
		prev = *pos;
		pos = &(*pos)->next;
	}
	t->next = *pos;
	t->prev = prev;
	if (*pos)
		(*pos)->prev = t;
	*pos = t;
	t->armed = true;
}

int loop_add_timer(struct loop *l, uint64_t deadline, loop_timer_fn fn, void *userdata, struct loop_timer **ret)
{
	struct loop_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	*t = (struct loop_timer){ .fn = fn, .userdata = userdata };
	source_link(l, &t->src, LOOP_SOURCE_TIMER);
	loop_timer_set(t, deadline);
	*ret = t;
	return 0;
}

void loop_timer_free(struct loop_timer *t)
{
	if (!t)
		return;
	if (t->src.loop)
		timer_unlink(t);
	loop_source_release(&t->src);
}

int loop_add_defer(struct loop *l, loop_defer_fn fn, void *userdata, struct loop_defer **ret)
{
	struct loop_defer *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	*d = (struct loop_defer){ .fn = fn, .userdata = userdata };
	source_link(l, &d->src, LOOP_SOURCE_DEFER);
	*ret = d;
	return 0;
}

void loop_defer_schedule(struct loop_defer *d)
{
	struct loop *l = d->src.loop;

	if (!l || d->pending)
		return;
	d->pending = true;
	d->seq = ++l->defer_seq;
	d->next = NULL;
	d->prev = l->defers_tail;
	if (l->defers_tail)
		l->defers_tail->next = d;
	else
		l->defers = d;
	l->defers_tail = d;
}

void loop_defer_cancel(struct loop_defer *d)
{
	struct loop *l = d->src.loop;

	if (!d->pending)
		return;
	if (d == l->defers_tail)
		l->defers_tail = d->prev;
	LIST_REMOVE(l->defers, d);
	d->pending = false;
}

void loop_defer_free(struct loop_defer *d)
{
	if (!d)
		return;
	loop_defer_cancel(d);
	loop_source_release(&d->src);
}

int loop_add_signal(struct loop *l, int signo, loop_signal_fn fn, void *userdata)
{
	if (signo <= 0 || signo >= _NSIG || signo == SIGCHLD)
		return -EINVAL;
	l->handlers[signo] = (struct loop_signal){ fn, userdata };
	sigaddset(&l->signals, signo);
	sigprocmask(SIG_BLOCK, &l->signals, NULL);
	if (signalfd(l->signal_fd, &l->signals, SFD_NONBLOCK | SFD_CLOEXEC) < 0)
		return negative_errno();
	return 0;
}

void loop_set_orphan_handler(struct loop *l, loop_orphan_fn fn, void *userdata)
{
	l->orphan_fn = fn;
	l->orphan_userdata = userdata;
}

unsigned loop_children_count(const struct loop *l)
{
	return l->n_children;
}

int loop_child_new(struct loop *l, struct loop_child **ret)
{
	struct loop_child *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	source_link(l, &c->src, LOOP_SOURCE_CHILD);
	*ret = c;
	return 0;
}

static void child_unwatch(struct loop_child *c)
{
	struct loop *l = c->src.loop;

	if (!c->watching)
		return;
	LIST_REMOVE(l->children, c);
	l->n_children--;
	c->watching = false;
}

void loop_child_watch(struct loop_child *c, pid_t pid, loop_child_fn fn, void *userdata)
{
	struct loop *l = c->src.loop;

	if (!l)
		return;
	child_unwatch(c);
	c->pid = pid;
	c->fn = fn;
	c->userdata = userdata;
	c->reaped = false;
	c->status = 0;
	LIST_PREPEND(l->children, c);
	l->n_children++;
	c->watching = true;
}

int loop_watch_child(struct loop *l, pid_t pid, loop_child_fn fn, void *userdata, struct loop_child **ret)
{
	struct loop_child *c;
	int r = loop_child_new(l, &c);
	if (r < 0)
		return r;
	loop_child_watch(c, pid, fn, userdata);
	*ret = c;
	return 0;
}

void loop_child_free(struct loop_child *c)
{
	if (!c)
		return;
	if (c->src.loop)
		child_unwatch(c);
	loop_source_release(&c->src);
}

/* Calls the watchers of every reaped child. Each watch is disarmed before
 * its call and stays its owner's, to free (or start again) when it likes. */
static void loop_dispatch_children(struct loop *l)
{
	bool again = true;

	l->dispatch_pending_children = false;
	while (again) {
		again = false;
		for (struct loop_child *c = l->children; c; c = c->next) {
			if (!c->reaped)
				continue;
			child_unwatch(c);
			/* The callback may add, start or free watches (this
			 * one too): restart the walk afterwards. */
			c->fn(c->pid, c->status, c->userdata);
			again = true;
			break;
		}
	}
}

/* A pid nobody watches when it is reaped is an orphan, and nothing more:
 * no status is kept for a watch that might come later, since a later
 * watch on the same number can only be a new process (see loop.h). */
static void loop_reap(struct loop *l)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		struct loop_child *c;
		for (c = l->children; c; c = c->next)
			if (c->pid == pid && !c->reaped)
				break;
		if (c) {
			c->reaped = true;
			c->status = status;
			l->dispatch_pending_children = true;
		} else if (l->orphan_fn)
			l->orphan_fn(l, pid, status, l->orphan_userdata);
	}
}

static void loop_on_signalfd(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	struct loop *l = userdata;
	struct signalfd_siginfo si;
	bool chld = false;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		int signo = (int)si.ssi_signo;
		if (signo == SIGCHLD)
			chld = true;
		else if (signo > 0 && signo < _NSIG && l->handlers[signo].fn)
			l->handlers[signo].fn(l, signo, l->handlers[signo].userdata);
	}
	if (chld)
		loop_reap(l);
}

static int loop_timeout_ms(struct loop *l)
{
	if (l->dispatch_pending_children || l->defers)
		return 0;
	if (!l->timers || l->timers->deadline == USEC_INFINITY)
		return -1;
	uint64_t now = now_usec();
	if (l->timers->deadline <= now)
		return 0;
	uint64_t ms = (l->timers->deadline - now + 999) / 1000;
	return ms > 60000 ? 60000 : (int)ms;
}

static void loop_dispatch_timers(struct loop *l)
{
	uint64_t now = now_usec();
	while (l->timers && l->timers->deadline <= now) {
		struct loop_timer *t = l->timers;
		timer_unlink(t);
		t->fn(t, t->userdata);
	}
}

/* Runs the deferred sources scheduled before this phase began, oldest
 * first; those scheduled from here on wait for the next round (which does
 * not block), so one that keeps scheduling itself cannot starve I/O. */
static void loop_dispatch_defers(struct loop *l)
{
	uint64_t cut = l->defer_seq;

	while (l->defers && l->defers->seq <= cut) {
		struct loop_defer *d = l->defers;
		loop_defer_cancel(d);
		d->fn(d, d->userdata);
	}
}

/* Marks the start of dispatching; returns whether an outer dispatch (a
 * loop_run() from a callback) was already under way. */
static bool loop_dispatch_begin(struct loop *l)
{
	bool outer = l->dispatching;
	l->dispatching = true;
	return outer;
}

/* Frees what the round freed, unless an outer round still holds
 * pointers to it (its epoll events). */
static void loop_dispatch_end(struct loop *l, bool outer)
{
	if (outer)
		return;
	l->dispatching = false;
	loop_release_dead(l);
}

/* One round: see loop.h for the order. */
static int loop_round(struct loop *l)
{
	struct epoll_event events[64];
	int n = epoll_wait(l->epoll_fd, events, (int)ARRAY_SIZE(events), loop_timeout_ms(l));

	if (n < 0 && errno != EINTR)
		return negative_errno();
	bool outer = loop_dispatch_begin(l);
	for (int i = 0; i < n && l->running; i++) {
		struct loop_io *io = events[i].data.ptr;
		if (!io->dead)
			io->fn(io, io->fd, events[i].events, io->userdata);
	}
	if (l->dispatch_pending_children)
		loop_dispatch_children(l);
	loop_dispatch_timers(l);
	loop_dispatch_defers(l);
	loop_dispatch_end(l, outer);
	return 0;
}

int loop_run(struct loop *l)
{
	l->running = true;
	/* Children that exited before the loop started are reaped too. */
	bool outer = loop_dispatch_begin(l);
	loop_reap(l);
	loop_dispatch_end(l, outer);
	while (l->running) {
		int r = loop_round(l);
		if (r < 0)
			return r;
	}
	return l->exit_code;
}
