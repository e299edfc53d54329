/* What callers allocate ahead so that arming cannot fail later: unarmed
 * timers (USEC_INFINITY) and child watches created before the pid. */
#include <sys/wait.h>

#include "base/spawn.h"
#include "base/time-util.h"
#include "loop/loop.h"
#include "test.h"

static bool fired;
static int seen_status = -1;

static void never_fn(struct loop_timer *t, void *ud)
{
	fired = true;
}

static void stop_fn(struct loop_timer *t, void *ud)
{
	loop_exit(ud, 0);
}

TEST(infinite_timer_never_fires_nor_blocks)
{
	struct loop *l;
	struct loop_timer *never, *stop;
	CHECK_EQ(loop_new(&l), 0);
	fired = false;
	CHECK_EQ(loop_add_timer(l, USEC_INFINITY, never_fn, NULL, &never), 0);
	CHECK_EQ(loop_add_timer(l, now_usec() + 5000, stop_fn, l, &stop), 0);
	CHECK_EQ(loop_run(l), 0);
	CHECK(!fired);
	/* Armed later, it fires; set back to infinity, it does not. */
	loop_timer_set(never, 0);
	loop_timer_set(stop, now_usec() + 5000);
	CHECK_EQ(loop_run(l), 0);
	CHECK(fired);
	fired = false;
	loop_timer_set(never, USEC_INFINITY);
	loop_timer_set(stop, now_usec() + 5000);
	CHECK_EQ(loop_run(l), 0);
	CHECK(!fired);
	loop_timer_free(never);
	loop_timer_free(stop);
	loop_free(l);
}

static void child_fn(pid_t pid, int status, void *ud)
{
	seen_status = status;
	loop_exit(ud, 0);
}

TEST(child_watch_allocated_before_the_pid)
{
	struct loop *l;
	struct loop_child *unused, *c;
	struct loop_timer *guard;
	struct spawn_params p;
	struct spawn_error err;
	char *argv[] = { "sh", "-c", "exit 5", NULL };
	pid_t pid;

	CHECK_EQ(loop_new(&l), 0);
	/* One that is never started is simply freed. */
	CHECK_EQ(loop_child_new(l, &unused), 0);
	loop_child_free(unused);
	CHECK_EQ(loop_children_count(l), 0);

	CHECK_EQ(loop_child_new(l, &c), 0);
	spawn_params_init(&p);
	p.argv = argv;
	CHECK_EQ(spawn_process(&p, &pid, &err), 0);
	/* Gone before the watch starts, but the loop has not run since it
	 * was started (loop.h): still reported. */
	siginfo_t si;
	CHECK_EQ(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	seen_status = -1;
	loop_child_watch(c, pid, child_fn, l);
	CHECK_EQ(loop_children_count(l), 1);
	CHECK_EQ(loop_add_timer(l, now_usec() + 10 * USEC_PER_SEC, stop_fn, l, &guard), 0);
	CHECK_EQ(loop_run(l), 0);
	CHECK_EQ(waitpid(pid, NULL, WNOHANG), -1); /* the loop reaped it */
	CHECK(WIFEXITED(seen_status));
	CHECK_EQ(WEXITSTATUS(seen_status), 5);
	CHECK_EQ(loop_children_count(l), 0);
	loop_child_free(c); /* fired: inactive, still ours */
	loop_timer_free(guard);
	loop_free(l);
}
