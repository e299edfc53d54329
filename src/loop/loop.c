#include "loop.h"

#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "base/list.h"
#include "base/time-util.h"

/* Reaped pids nobody watched yet; bounded, oldest dropped first. */
#define LOOP_UNCLAIMED_MAX 64

/* The first member of every source. A source freed while the loop
 * dispatches waits on the loop's dead list until the round is over, so
 * that whatever still points at it in this round (an epoll event, a
 * dispatch walk) reads valid memory. */
struct loop_source {
	struct loop_source *next_dead;
};

struct loop_io {
	struct loop_source src;
	struct loop *loop;
	int fd;
	uint32_t events;
	loop_io_fn fn;
	void *userdata;
	bool dead;
	struct loop_io *prev, *next; /* live sources, so loop_free can free them */
};

struct loop_timer {
	struct loop_source src;
	struct loop *loop;
	uint64_t deadline;
	loop_timer_fn fn;
	void *userdata;
	bool armed;
	struct loop_timer *prev, *next;
};

struct loop_child {
	struct loop_source src;
	struct loop *loop;
	pid_t pid;
	int status;
	bool reaped;
	bool watching; /* on the loop's list */
	loop_child_fn fn;
	void *userdata;
	struct loop_child *prev, *next;
};

struct loop_defer {
	struct loop_source src;
	struct loop *loop;
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

	struct loop_io *ios;
	struct loop_timer *timers; /* sorted by deadline */
	struct loop_child *children;
	unsigned n_children;
	/* Deferred sources scheduled, oldest first. */
	struct loop_defer *defers, *defers_tail;
	uint64_t defer_seq;
	struct loop_source *dead;
	bool dispatching;

	struct {
		pid_t pid;
		int status;
	} unclaimed[LOOP_UNCLAIMED_MAX];
	unsigned n_unclaimed;
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

static void loop_release_dead(struct loop *l)
{
	while (l->dead) {
		struct loop_source *s = l->dead;
		l->dead = s->next_dead;
		free(s);
	}
}

/* Frees a source now, or at the end of the round when the loop is
 * dispatching. s is the first member of the source's struct. */
static void loop_source_release(struct loop *l, struct loop_source *s)
{
	if (!l->dispatching) {
		free(s);
		return;
	}
	s->next_dead = l->dead;
	l->dead = s;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	while (l->ios)
		loop_io_free(l->ios);
	while (l->timers)
		loop_timer_free(l->timers);
	while (l->children)
		loop_child_free(l->children);
	while (l->defers)
		loop_defer_free(l->defers);
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
	/* With the epoll fd gone, the EPOLL_CTL_DELs in loop_free are no-ops. */
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

int loop_add_io(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *userdata, struct loop_io **ret)
{
	struct loop_io *io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	*io = (struct loop_io){ .loop = l, .fd = fd, .events = events, .fn = fn, .userdata = userdata };
	struct epoll_event ev = { .events = events, .data.ptr = io };
	if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = negative_errno();
		free(io);
		return r;
	}
	LIST_PREPEND(l->ios, io);
	*ret = io;
	return 0;
}

int loop_io_set_events(struct loop_io *io, uint32_t events)
{
	if (io->events == events)
		return 0;
	struct epoll_event ev = { .events = events, .data.ptr = io };
	if (epoll_ctl(io->loop->epoll_fd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return negative_errno();
	io->events = events;
	return 0;
}

void loop_io_free(struct loop_io *io)
{
	if (!io || io->dead)
		return;
	struct loop *l = io->loop;
	(void)epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, io->fd, NULL);
	LIST_REMOVE(l->ios, io);
	io->dead = true;
	loop_source_release(l, &io->src);
}

static void timer_unlink(struct loop_timer *t)
{
	if (!t->armed)
		return;
	LIST_REMOVE(t->loop->timers, t);
	t->armed = false;
}

void loop_timer_set(struct loop_timer *t, uint64_t deadline)
{
	struct loop *l = t->loop;
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
	*t = (struct loop_timer){ .loop = l, .fn = fn, .userdata = userdata };
	loop_timer_set(t, deadline);
	*ret = t;
	return 0;
}

void loop_timer_free(struct loop_timer *t)
{
	if (!t)
		return;
	timer_unlink(t);
	loop_source_release(t->loop, &t->src);
}

int loop_add_defer(struct loop *l, loop_defer_fn fn, void *userdata, struct loop_defer **ret)
{
	struct loop_defer *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	*d = (struct loop_defer){ .loop = l, .fn = fn, .userdata = userdata };
	*ret = d;
	return 0;
}

void loop_defer_schedule(struct loop_defer *d)
{
	struct loop *l = d->loop;

	if (d->pending)
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
	struct loop *l = d->loop;

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
	loop_source_release(d->loop, &d->src);
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
	c->loop = l;
	*ret = c;
	return 0;
}

void loop_child_watch(struct loop_child *c, pid_t pid, loop_child_fn fn, void *userdata)
{
	struct loop *l = c->loop;

	c->pid = pid;
	c->fn = fn;
	c->userdata = userdata;
	for (unsigned i = 0; i < l->n_unclaimed; i++) {
		if (l->unclaimed[i].pid != pid)
			continue;
		c->reaped = true;
		c->status = l->unclaimed[i].status;
		l->unclaimed[i] = l->unclaimed[--l->n_unclaimed];
		l->dispatch_pending_children = true;
		break;
	}
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
	if (ret)
		*ret = c;
	return 0;
}

void loop_child_free(struct loop_child *c)
{
	if (!c)
		return;
	struct loop *l = c->loop;
	if (c->watching) {
		LIST_REMOVE(l->children, c);
		l->n_children--;
	}
	loop_source_release(l, &c->src);
}

static void loop_remember_unclaimed(struct loop *l, pid_t pid, int status)
{
	if (l->n_unclaimed == LOOP_UNCLAIMED_MAX) {
		memmove(&l->unclaimed[0], &l->unclaimed[1], sizeof(l->unclaimed[0]) * (LOOP_UNCLAIMED_MAX - 1));
		l->n_unclaimed--;
	}
	l->unclaimed[l->n_unclaimed].pid = pid;
	l->unclaimed[l->n_unclaimed].status = status;
	l->n_unclaimed++;
}

/* Calls the watchers of every reaped child; each is freed after its call. */
static void loop_dispatch_children(struct loop *l)
{
	bool again = true;

	l->dispatch_pending_children = false;
	while (again) {
		again = false;
		for (struct loop_child *c = l->children; c; c = c->next) {
			if (!c->reaped)
				continue;
			loop_child_fn fn = c->fn;
			void *ud = c->userdata;
			pid_t pid = c->pid;
			int status = c->status;
			/* The callback may add or free watchers: restart the
			 * walk afterwards. */
			loop_child_free(c);
			fn(pid, status, ud);
			again = true;
			break;
		}
	}
}

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
		} else {
			loop_remember_unclaimed(l, pid, status);
			if (l->orphan_fn)
				l->orphan_fn(l, pid, status, l->orphan_userdata);
		}
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
