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
	(void)l;
	(void)pid;
	(void)status;
	(void)ud;
	orphans++;
}

static void watch_late(struct loop_timer *t, void *ud)
{
	loop_timer_free(t);
	/* The child was reaped before anybody watched it. */
	loop_watch_child(ud, child_pid, on_child, ud, NULL);
}

TEST(child_reaped_before_watch_is_remembered)
{
	struct loop *l;
	struct loop_timer *t;
	CHECK_EQ(loop_new(&l), 0);
	loop_set_orphan_handler(l, on_orphan, NULL);
	orphans = 0;
	child_status = -1;
	child_pid = fork();
	if (child_pid == 0)
		_exit(9);
	loop_add_timer(l, now_usec() + 100000, watch_late, l, &t);
	CHECK_EQ(loop_run(l), 0);
	CHECK_EQ(orphans, 1);
	CHECK(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 9);
	loop_free(l);
}

static int sigs;

static void on_usr1(struct loop *l, int signo, void *ud)
{
	(void)ud;
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
	(void)fd;
	(void)ev;
	io_calls++;
	/* Free both sources from the first callback: the second must not run. */
	loop_io_free(io_a);
	loop_io_free(io_b);
	(void)io;
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
	CHECK_EQ(loop_run(l), 0);
	CHECK_EQ(io_calls, 1);
	loop_free(l);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
}
