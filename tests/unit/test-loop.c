#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include "base/time-util.h"
#include "loop/loop.h"
#include "test.h"

static int order[8], n_order;

static void timer_fn(struct loop_timer *t, void *ud)
{
	order[n_order++] = (int)(intptr_t)ud;
	loop_timer_free(t);
}

static void stop_fn(struct loop_timer *t, void *ud)
{
	loop_timer_free(t);
	loop_exit(ud, 7);
}

TEST(timers_fire_in_deadline_order)
{
	struct loop *l;
	struct loop_timer *t;
	uint64_t now = now_usec();
	CHECK_EQ(loop_new(&l), 0);
	n_order = 0;
	loop_add_timer(l, now + 3000, timer_fn, (void *)3, &t);
	loop_add_timer(l, now + 1000, timer_fn, (void *)1, &t);
	loop_add_timer(l, now + 2000, timer_fn, (void *)2, &t);
	loop_add_timer(l, now + 5000, stop_fn, l, &t);
	CHECK_EQ(loop_run(l), 7);
	CHECK_EQ(n_order, 3);
	CHECK_EQ(order[0], 1);
	CHECK_EQ(order[1], 2);
	CHECK_EQ(order[2], 3);
	CHECK(now_usec() >= now + 5000);
	loop_free(l);
}

static int child_status = -1;
static pid_t child_pid;

static void on_child(pid_t pid, int status, void *ud)
{
	child_pid = pid;
	child_status = status;
	loop_exit(ud, 0);
}

TEST(child_exit_dispatched)
{
	struct loop *l;
	struct loop_child *c;
	CHECK_EQ(loop_new(&l), 0);
	pid_t pid = fork();
	if (pid == 0)
		_exit(5);
	CHECK_EQ(loop_watch_child(l, pid, on_child, l, &c), 0);
	CHECK_EQ(loop_children_count(l), 1);
	CHECK_EQ(loop_run(l), 0);
	CHECK_EQ(child_pid, pid);
	CHECK(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 5);
	CHECK_EQ(loop_children_count(l), 0);
	/* Fired, the watch is inactive and still ours. */
	loop_child_free(c);
	loop_free(l);
}

/* Pid reuse (defect 1 of issue 17): a reaped pid nobody watched is an
 * orphan and nothing more. A later watch on the same pid number is for a
 * new process and must wait for that one's exit. Made real in a pid
 * namespace of our own, where /proc/sys/kernel/ns_last_pid picks the
 * number the next fork gets. */
struct reuse {
	pid_t orphan;
	int orphan_status;
	bool released;	  /* the new child was told to exit */
	bool fired_early; /* its watch fired before that */
	int status;
	int release_fd;
	struct loop *l;
};

static void reuse_on_orphan(struct loop *l, pid_t pid, int status, void *ud)
{
	struct reuse *r = ud;
	r->orphan = pid;
	r->orphan_status = status;
	loop_exit(l, 0);
}

static void reuse_on_child(pid_t pid, int status, void *ud)
{
	struct reuse *r = ud;
	r->fired_early = !r->released;
	r->status = status;
	loop_exit(r->l, 0);
}

static void reuse_release(struct loop_timer *t, void *ud)
{
	struct reuse *r = ud;
	r->released = true;
	close(r->release_fd);
	r->release_fd = -1;
}

static void reuse_guard(struct loop_timer *t, void *ud)
{
	loop_exit(ud, 1);
}

/* Runs as PID 1 of a new pid namespace. */
static void reuse_case(void)
{
	struct loop *l;
	struct loop_timer *guard, *release;
	struct loop_child *c;
	struct reuse r = { .orphan = -1, .status = -1, .release_fd = -1 };
	int fds[2], nfd;
	char num[16];

	CHECK_EQ(getpid(), 1);
	CHECK_EQ(loop_new(&l), 0);
	r.l = l;
	loop_set_orphan_handler(l, reuse_on_orphan, &r);
	CHECK_EQ(loop_add_timer(l, now_usec() + 10 * USEC_PER_SEC, reuse_guard, l, &guard), 0);
	pid_t a = fork();
	if (a == 0)
		_exit(5);
	CHECK(a > 1);
	CHECK_EQ(loop_run(l), 0);
	CHECK_EQ(r.orphan, a);
	CHECK(WIFEXITED(r.orphan_status) && WEXITSTATUS(r.orphan_status) == 5);

	/* The next fork gets the orphan's number. */
	nfd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	CHECK(nfd >= 0);
	snprintf(num, sizeof(num), "%d", (int)a - 1);
	CHECK_EQ(write(nfd, num, strlen(num)), (long long)strlen(num));
	close(nfd);
	CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
	pid_t b = fork();
	if (b == 0) {
		char ch;
		close(fds[1]);
		(void)read(fds[0], &ch, 1);
		_exit(7);
	}
	close(fds[0]);
	r.release_fd = fds[1];
	CHECK_EQ(b, a);
	CHECK_EQ(loop_watch_child(l, b, reuse_on_child, &r, &c), 0);
	CHECK_EQ(loop_add_timer(l, now_usec() + 50 * USEC_PER_MSEC, reuse_release, &r, &release), 0);
	CHECK_EQ(loop_run(l), 0);
	CHECK(!r.fired_early);
	CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 7);
	if (r.release_fd >= 0)
		close(r.release_fd);
	loop_child_free(c);
	loop_timer_free(release);
	loop_timer_free(guard);
	loop_free(l);
}

/* Runs fn as PID 1 of a new pid namespace; its CHECK failures come back
 * through a pipe. */
static void in_pid_namespace(void (*fn)(void))
{
	int fds[2], status;
	char why[sizeof(test_failure)] = "";

	CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
	pid_t p = fork();
	CHECK(p >= 0);
	if (p == 0) {
		close(fds[0]);
		if (unshare(CLONE_NEWPID) < 0 && unshare(CLONE_NEWUSER | CLONE_NEWPID) < 0) {
			dprintf(fds[1], "cannot make a pid namespace: %s", strerror(errno));
			_exit(1);
		}
		pid_t q = fork();
		if (q == 0) {
			fn();
			if (test_failed_flag)
				dprintf(fds[1], "%s", test_failure);
			_exit(test_failed_flag ? 1 : 0);
		}
		if (q < 0 || waitpid(q, &status, 0) < 0)
			_exit(1);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 2);
	}
	close(fds[1]);
	ssize_t n = read(fds[0], why, sizeof(why) - 1);
	close(fds[0]);
	CHECK_EQ(waitpid(p, &status, 0), p);
	if (n > 0) {
		why[n] = 0;
		snprintf(test_failure, sizeof(test_failure), "in the pid namespace: %.1900s", why);
		test_failed_flag = true;
		return;
	}
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(reused_pid_of_an_orphan_waits_for_the_new_child)
{
	in_pid_namespace(reuse_case);
}

static int sigs;

static void on_usr1(struct loop *l, int signo, void *ud)
{
	if (signo == SIGUSR1 && ++sigs == 2)
		loop_exit(l, 0);
	else
		raise(SIGUSR1);
}

TEST(signals_through_signalfd)
{
	struct loop *l;
	CHECK_EQ(loop_new(&l), 0);
	sigs = 0;
	CHECK_EQ(loop_add_signal(l, SIGUSR1, on_usr1, NULL), 0);
	CHECK_EQ(loop_add_signal(l, SIGCHLD, on_usr1, NULL), -EINVAL);
	raise(SIGUSR1);
	CHECK_EQ(loop_run(l), 0);
	CHECK_EQ(sigs, 2);
	loop_free(l);
}

static int io_calls;
static struct loop_io *io_a, *io_b;

static void io_fn(struct loop_io *io, int fd, uint32_t ev, void *ud)
{
	io_calls++;
	/* Free both sources from the first callback: the second must not run,
	 * though epoll reported it in the same round. */
	loop_io_free(io_a);
	loop_io_free(io_b);
}

/* Ends the loop after the round's I/O dispatch, not from inside it:
 * loop_exit() there would stop the dispatch by itself. */
static void exit_fn(struct loop_defer *d, void *ud)
{
	loop_defer_free(d);
	loop_exit(ud, 0);
}

TEST(io_freed_during_dispatch_is_not_called)
{
	struct loop *l;
	int p1[2], p2[2];
	CHECK_EQ(loop_new(&l), 0);
	CHECK_EQ(pipe(p1), 0);
	CHECK_EQ(pipe(p2), 0);
	CHECK_EQ(write(p1[1], "x", 1), 1);
	CHECK_EQ(write(p2[1], "x", 1), 1);
	io_calls = 0;
	CHECK_EQ(loop_add_io(l, p1[0], EPOLLIN, io_fn, l, &io_a), 0);
	CHECK_EQ(loop_add_io(l, p2[0], EPOLLIN, io_fn, l, &io_b), 0);
	struct loop_defer *d;
	CHECK_EQ(loop_add_defer(l, exit_fn, l, &d), 0);
	loop_defer_schedule(d);
	CHECK_EQ(loop_run(l), 0);
	CHECK_EQ(io_calls, 1);
	loop_free(l);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
}

/* The round's order (loop.h): I/O, child watchers, timers, deferred
 * sources; a deferred source scheduled from a deferred source runs in the
 * next round, after that round's I/O. */
static char trace[64];
static size_t n_trace;
static struct loop_defer *defer_a, *defer_b, *defer_late;
static struct loop_timer *due_timer;
static int trace_pipe[2];

static void trace_add(char c)
{
	if (n_trace + 1 < sizeof(trace))
		trace[n_trace++] = c;
	trace[n_trace] = 0;
}

static void order_io(struct loop_io *io, int fd, uint32_t ev, void *ud)
{
	char ch;
	if (read(fd, &ch, 1) != 1)
		return;
	trace_add(ch);
	if (ch == 'i') {
		/* Scheduled in reverse of their creation: run in this order. */
		loop_defer_schedule(defer_b);
		loop_defer_schedule(defer_a);
		loop_defer_schedule(defer_b); /* already pending: no-op */
		loop_timer_set(due_timer, 0);
	} else
		loop_io_free(io);
}

static void order_child(pid_t pid, int status, void *ud)
{
	trace_add('c');
}

static void order_timer(struct loop_timer *t, void *ud)
{
	trace_add('t');
}

static void order_defer(struct loop_defer *d, void *ud)
{
	trace_add(*(const char *)ud);
	if (d == defer_a) {
		/* Next round, after that round's I/O ('j'). */
		loop_defer_schedule(defer_late);
		CHECK_EQ(write(trace_pipe[1], "j", 1), 1);
	}
}

static void order_late(struct loop_defer *d, void *ud)
{
	trace_add('L');
	loop_exit(ud, 0);
}

TEST(round_order_io_children_timers_defers)
{
	struct loop *l;
	struct loop_io *io;
	CHECK_EQ(loop_new(&l), 0);
	CHECK_EQ(pipe(trace_pipe), 0);
	n_trace = 0;
	trace[0] = 0;
	CHECK_EQ(loop_add_io(l, trace_pipe[0], EPOLLIN, order_io, NULL, &io), 0);
	CHECK_EQ(loop_add_defer(l, order_defer, "a", &defer_a), 0);
	CHECK_EQ(loop_add_defer(l, order_defer, "b", &defer_b), 0);
	CHECK_EQ(loop_add_defer(l, order_late, l, &defer_late), 0);
	CHECK_EQ(loop_add_timer(l, USEC_INFINITY, order_timer, NULL, &due_timer), 0);
	/* A child reaped in the round whose I/O is 'i': both the SIGCHLD and
	 * the byte are there before the loop first waits. */
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	CHECK(pid > 0);
	struct loop_child *c;
	CHECK_EQ(loop_watch_child(l, pid, order_child, NULL, &c), 0);
	siginfo_t si;
	CHECK_EQ(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	CHECK_EQ(write(trace_pipe[1], "i", 1), 1);
	CHECK_EQ(loop_run(l), 0);
	CHECK_STR(trace, "ictbajL");
	loop_timer_free(due_timer);
	loop_defer_free(defer_a);
	loop_defer_free(defer_b);
	loop_defer_free(defer_late);
	loop_child_free(c);
	loop_free(l);
	close(trace_pipe[0]);
	close(trace_pipe[1]);
}

/* A timer and a deferred source freed by an earlier callback of the same
 * step are not called, though they were due. */
static struct loop_timer *victim_timer;
static struct loop_defer *victim_defer;
static int victims_called;

static void killer_timer(struct loop_timer *t, void *ud)
{
	loop_timer_free(t);
	loop_timer_free(victim_timer);
}

static void victim_timer_fn(struct loop_timer *t, void *ud)
{
	victims_called++;
}

static void killer_defer(struct loop_defer *d, void *ud)
{
	loop_defer_free(d);
	loop_defer_free(victim_defer);
	loop_exit(ud, 0);
}

static void victim_defer_fn(struct loop_defer *d, void *ud)
{
	victims_called++;
}

TEST(timer_and_defer_freed_during_dispatch_are_not_called)
{
	struct loop *l;
	struct loop_timer *t;
	struct loop_defer *d;
	CHECK_EQ(loop_new(&l), 0);
	victims_called = 0;
	CHECK_EQ(loop_add_timer(l, 1, killer_timer, NULL, &t), 0);
	CHECK_EQ(loop_add_timer(l, 2, victim_timer_fn, NULL, &victim_timer), 0);
	CHECK_EQ(loop_add_defer(l, killer_defer, l, &d), 0);
	CHECK_EQ(loop_add_defer(l, victim_defer_fn, NULL, &victim_defer), 0);
	loop_defer_schedule(d);
	loop_defer_schedule(victim_defer);
	CHECK_EQ(loop_run(l), 0);
	CHECK_EQ(victims_called, 0);
	loop_free(l);
}

/* The ownership rule (loop.h): the owner frees every source, in any state;
 * the loop only disarms. Under ASan these cases also show that nothing
 * leaks and nothing is touched after it is freed. */
static int self_freed;
static struct loop *self_loop;

static void self_freed_one(void)
{
	if (++self_freed == 4)
		loop_exit(self_loop, 0);
}

static void free_self_io(struct loop_io *io, int fd, uint32_t ev, void *ud)
{
	loop_io_free(io);
	self_freed_one();
}

static void free_self_child(pid_t pid, int status, void *ud)
{
	loop_child_free(*(struct loop_child **)ud);
	self_freed_one();
}

static void free_self_defer(struct loop_defer *d, void *ud)
{
	loop_defer_free(d);
	self_freed_one();
}

static void free_self_timer(struct loop_timer *t, void *ud)
{
	loop_timer_free(t);
	self_freed_one();
}

static void guard_timer(struct loop_timer *t, void *ud)
{
	loop_exit(ud, 1);
}

TEST(every_source_freed_from_its_own_callback)
{
	struct loop *l;
	struct loop_io *io;
	struct loop_child *c;
	struct loop_defer *d;
	struct loop_timer *t, *guard;
	int p[2];

	CHECK_EQ(loop_new(&l), 0);
	self_loop = l;
	self_freed = 0;
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ(write(p[1], "x", 1), 1);
	CHECK_EQ(loop_add_io(l, p[0], EPOLLIN, free_self_io, NULL, &io), 0);
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	CHECK_EQ(loop_watch_child(l, pid, free_self_child, &c, &c), 0);
	CHECK_EQ(loop_add_defer(l, free_self_defer, NULL, &d), 0);
	loop_defer_schedule(d);
	CHECK_EQ(loop_add_timer(l, now_usec() + 20 * USEC_PER_MSEC, free_self_timer, NULL, &t), 0);
	CHECK_EQ(loop_add_timer(l, now_usec() + 10 * USEC_PER_SEC, guard_timer, l, &guard), 0);
	CHECK_EQ(loop_run(l), 0);
	CHECK_EQ(self_freed, 4);
	CHECK_EQ(loop_children_count(l), 0);
	loop_timer_free(guard);
	loop_free(l);
	close(p[0]);
	close(p[1]);
}

/* Sources in each state they can be in, the owner's to free. */
struct states {
	struct loop_io *io;
	struct loop_timer *armed, *unarmed, *fired;
	struct loop_child *unstarted, *watching, *fired_child;
	struct loop_defer *idle, *pending, *ran;
	int calls;
};

static void count_child(pid_t pid, int status, void *ud)
{
	((struct states *)ud)->calls++;
}

static void count_timer(struct loop_timer *t, void *ud)
{
	((struct states *)ud)->calls++;
}

static void count_defer(struct loop_defer *d, void *ud)
{
	((struct states *)ud)->calls++;
}

static void count_io(struct loop_io *io, int fd, uint32_t ev, void *ud)
{
	((struct states *)ud)->calls++;
}

/* Ends a run from step 4, once the child watch fired at step 3. */
static void end_run(struct loop_timer *t, void *ud)
{
	loop_exit(ud, 0);
}

/* Makes sources in every state (a child reaped but not yet dispatched
 * exists only within a round: reaped_child_freed_before_its_dispatch...).
 * Returns the pid of the child still watched, to stop with states_end(). */
static int states_make(struct loop *l, struct states *s, int fd)
{
	struct loop_timer *end;
	int r = 0;

	*s = (struct states){ 0 };
	r |= loop_add_io(l, fd, EPOLLIN, count_io, s, &s->io);
	r |= loop_add_timer(l, now_usec() + 100 * USEC_PER_SEC, count_timer, s, &s->armed);
	r |= loop_add_timer(l, USEC_INFINITY, count_timer, s, &s->unarmed);
	r |= loop_add_timer(l, 0, count_timer, s, &s->fired);
	r |= loop_child_new(l, &s->unstarted);
	r |= loop_child_new(l, &s->watching);
	r |= loop_child_new(l, &s->fired_child);
	r |= loop_add_defer(l, count_defer, s, &s->idle);
	r |= loop_add_defer(l, count_defer, s, &s->pending);
	r |= loop_add_defer(l, count_defer, s, &s->ran);
	if (r < 0)
		return -1;
	/* A child that never exits while we look (stopped at the end). */
	pid_t sleeper = fork();
	if (sleeper == 0) {
		pause();
		_exit(0);
	}
	loop_child_watch(s->watching, sleeper, count_child, s);
	pid_t quick = fork();
	if (quick == 0)
		_exit(3);
	loop_child_watch(s->fired_child, quick, count_child, s);
	loop_defer_schedule(s->ran);
	siginfo_t si;
	(void)waitid(P_PID, (id_t)quick, &si, WEXITED | WNOWAIT);
	/* One run: the quick child fires, the zero timer fires, "ran" runs. */
	if (loop_add_timer(l, 0, end_run, l, &end) < 0 || loop_run(l) != 0)
		return -1;
	loop_timer_free(end);
	loop_defer_schedule(s->pending);
	return sleeper;
}

static void states_end(pid_t sleeper)
{
	kill(sleeper, SIGKILL);
	(void)waitpid(sleeper, NULL, 0);
}

TEST(owner_frees_sources_in_every_state)
{
	struct loop *l;
	struct states s;
	int p[2];

	CHECK_EQ(loop_new(&l), 0);
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	pid_t sleeper = states_make(l, &s, p[0]);
	CHECK(sleeper > 0);
	CHECK_EQ(s.calls, 3); /* the quick child, the zero timer, "ran" */
	CHECK_EQ(loop_children_count(l), 1);
	/* Fired, ran, inactive: all still allocated, all ours. */
	loop_io_free(s.io);
	loop_timer_free(s.armed);
	loop_timer_free(s.unarmed);
	loop_timer_free(s.fired);
	loop_child_free(s.unstarted);
	loop_child_free(s.watching);
	loop_child_free(s.fired_child);
	loop_defer_free(s.idle);
	loop_defer_free(s.pending);
	loop_defer_free(s.ran);
	CHECK_EQ(loop_children_count(l), 0);
	loop_free(l);
	states_end(sleeper);
	close(p[0]);
	close(p[1]);
}

TEST(fired_child_watch_can_be_started_again)
{
	struct loop *l;
	struct loop_child *c;

	CHECK_EQ(loop_new(&l), 0);
	CHECK_EQ(loop_child_new(l, &c), 0);
	for (int i = 1; i <= 2; i++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(i);
		child_status = -1;
		loop_child_watch(c, pid, on_child, l);
		CHECK_EQ(loop_run(l), 0);
		CHECK_EQ(child_pid, pid);
		CHECK(WIFEXITED(child_status) && WEXITSTATUS(child_status) == i);
	}
	loop_child_free(c);
	loop_free(l);
}

/* A watch whose child was reaped in this round's I/O step, freed before
 * step 3: its watcher is not called, and nothing is left behind. */
static struct loop_child *undispatched;
static int undispatched_calls;

static void undispatched_fn(pid_t pid, int status, void *ud)
{
	undispatched_calls++;
}

static void free_undispatched(struct loop_io *io, int fd, uint32_t ev, void *ud)
{
	char ch;
	(void)read(fd, &ch, 1);
	/* The SIGCHLD and this byte were both there before the loop waited,
	 * so the child is reaped in this step (whichever fd epoll reported
	 * first), and its watcher would run at step 3. */
	loop_child_free(undispatched);
	undispatched = NULL;
	loop_io_free(io);
}

static void end_defer(struct loop_defer *d, void *ud)
{
	loop_defer_free(d);
	loop_exit(ud, 0);
}

TEST(reaped_child_freed_before_its_dispatch_is_not_called)
{
	struct loop *l;
	struct loop_io *io;
	struct loop_defer *d;
	int p[2];

	CHECK_EQ(loop_new(&l), 0);
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	undispatched_calls = 0;
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	CHECK_EQ(loop_watch_child(l, pid, undispatched_fn, NULL, &undispatched), 0);
	siginfo_t si;
	CHECK_EQ(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	CHECK_EQ(write(p[1], "x", 1), 1);
	CHECK_EQ(loop_add_io(l, p[0], EPOLLIN, free_undispatched, NULL, &io), 0);
	CHECK_EQ(loop_add_defer(l, end_defer, l, &d), 0);
	loop_defer_schedule(d);
	CHECK_EQ(loop_run(l), 0);
	CHECK_EQ(undispatched_calls, 0);
	CHECK_EQ(loop_children_count(l), 0);
	loop_free(l);
	close(p[0]);
	close(p[1]);
}

TEST(sources_outlive_loop_free_detached)
{
	struct loop *l;
	struct states s;
	int p[2];

	CHECK_EQ(loop_new(&l), 0);
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	pid_t sleeper = states_make(l, &s, p[0]);
	CHECK(sleeper > 0);
	loop_free(l);
	/* Detached: arming does nothing, and each is freed as before. */
	CHECK_EQ(loop_io_set_events(s.io, EPOLLOUT), -ESTALE);
	loop_timer_set(s.unarmed, 0);
	loop_defer_schedule(s.idle);
	loop_child_watch(s.unstarted, sleeper, count_child, &s);
	loop_defer_cancel(s.pending);
	loop_io_free(s.io);
	loop_timer_free(s.armed);
	loop_timer_free(s.unarmed);
	loop_timer_free(s.fired);
	loop_child_free(s.unstarted);
	loop_child_free(s.watching);
	loop_child_free(s.fired_child);
	loop_defer_free(s.idle);
	loop_defer_free(s.pending);
	loop_defer_free(s.ran);
	states_end(sleeper);
	close(p[0]);
	close(p[1]);
}

/* In a forked child, called from one of the loop's callbacks (as vshd
 * does): the sources go with the loop (the child's owners drop their
 * copies), and the child goes on with a loop of its own. */
static struct loop *fork_loop;
static int fork_status;

static void fork_in_callback(struct loop_io *io, int fd, uint32_t ev, void *ud)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct loop *l2;
		loop_free_after_fork(fork_loop);
		if (loop_new(&l2) < 0)
			_exit(3);
		loop_free(l2);
		_exit(0);
	}
	fork_status = -1;
	(void)waitpid(pid, &fork_status, 0);
	loop_exit(fork_loop, 0);
}

TEST(loop_free_after_fork_from_a_callback)
{
	struct loop *l;
	struct loop_io *io;
	struct states s;
	int p[2], q[2];

	CHECK_EQ(loop_new(&l), 0);
	fork_loop = l;
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ(pipe2(q, O_CLOEXEC), 0);
	pid_t sleeper = states_make(l, &s, p[0]);
	CHECK(sleeper > 0);
	CHECK_EQ(loop_add_io(l, q[0], EPOLLIN, fork_in_callback, NULL, &io), 0);
	CHECK_EQ(write(q[1], "x", 1), 1);
	CHECK_EQ(loop_run(l), 0);
	CHECK(WIFEXITED(fork_status) && WEXITSTATUS(fork_status) == 0);
	loop_io_free(io);
	loop_io_free(s.io);
	loop_timer_free(s.armed);
	loop_timer_free(s.unarmed);
	loop_timer_free(s.fired);
	loop_child_free(s.unstarted);
	loop_child_free(s.watching);
	loop_child_free(s.fired_child);
	loop_defer_free(s.idle);
	loop_defer_free(s.pending);
	loop_defer_free(s.ran);
	loop_free(l);
	states_end(sleeper);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}
