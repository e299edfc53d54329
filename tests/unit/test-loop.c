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
	CHECK_EQ(loop_new(&l), 0);
	pid_t pid = fork();
	if (pid == 0)
		_exit(5);
	CHECK_EQ(loop_watch_child(l, pid, on_child, l, NULL), 0);
	CHECK_EQ(loop_children_count(l), 1);
	CHECK_EQ(loop_run(l), 0);
	CHECK_EQ(child_pid, pid);
	CHECK(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 5);
	CHECK_EQ(loop_children_count(l), 0);
	loop_free(l);
}

static int orphans;

static void on_orphan(struct loop *l, pid_t pid, int status, void *ud)
{
	orphans++;
}

static void watch_late(struct loop_defer *d, void *ud)
{
	loop_defer_free(d);
	/* The child was reaped before anybody watched it. */
	loop_watch_child(ud, child_pid, on_child, ud, NULL);
}

static void on_orphan_watch_late(struct loop *l, pid_t pid, int status, void *ud)
{
	on_orphan(l, pid, status, ud);
	/* The watch comes after the reap, from the same round. */
	loop_defer_schedule(ud);
}

TEST(child_reaped_before_watch_is_remembered)
{
	struct loop *l;
	struct loop_defer *d;
	CHECK_EQ(loop_new(&l), 0);
	CHECK_EQ(loop_add_defer(l, watch_late, l, &d), 0);
	loop_set_orphan_handler(l, on_orphan_watch_late, d);
	orphans = 0;
	child_status = -1;
	child_pid = fork();
	if (child_pid == 0)
		_exit(9);
	CHECK_EQ(loop_run(l), 0);
	CHECK_EQ(orphans, 1);
	CHECK(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 9);
	loop_free(l);
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
	CHECK_EQ(loop_watch_child(l, pid, order_child, NULL, NULL), 0);
	siginfo_t si;
	CHECK_EQ(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	CHECK_EQ(write(trace_pipe[1], "i", 1), 1);
	CHECK_EQ(loop_run(l), 0);
	CHECK_STR(trace, "ictbajL");
	loop_timer_free(due_timer);
	loop_defer_free(defer_a);
	loop_defer_free(defer_b);
	loop_defer_free(defer_late);
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
