/* The supervisor: its state machine driven input by input with a fake clock
 * in milliseconds (start, exit, respawn, backoff, throttle, stop, spawn
 * failure), then the loop binding with real children and short timings. */
#include <sys/stat.h>

#include "base/macro.h"
#include "base/time-util.h"
#include "init/supervisor.h"
#include "test.h"

#define MS (1000ull)

static struct supervisor_params defaults(void)
{
	struct supervisor_params p;
	supervisor_params_init(&p);
	return p;
}

/* Runs one exit, and the restart at the deadline the machine asked for;
 * returns the backoff it chose, in ms. *now advances by run_ms first. */
static uint64_t crash_and_restart(struct supervisor_machine *m, const struct supervisor_params *p, uint64_t *now,
				  uint64_t run_ms)
{
	*now += run_ms * MS;
	unsigned act = supervisor_step(m, p, SUPERVISOR_EXIT, *now);
	if (act != SUPERVISOR_DO_ARM || m->state != SUPERVISOR_BACKOFF)
		return UINT64_MAX;
	uint64_t delay = m->deadline - *now;
	*now = m->deadline;
	if (supervisor_step(m, p, SUPERVISOR_DEADLINE, *now) != SUPERVISOR_DO_SPAWN || m->state != SUPERVISOR_STARTING)
		return UINT64_MAX;
	if (supervisor_step(m, p, SUPERVISOR_STARTED, *now) != 0 || m->state != SUPERVISOR_RUNNING)
		return UINT64_MAX;
	return delay / MS;
}

TEST(start_then_running)
{
	struct supervisor_params p = defaults();
	struct supervisor_machine m;

	supervisor_machine_init(&m);
	CHECK_EQ(m.state, SUPERVISOR_STARTING);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_STARTED, 5 * MS), 0);
	CHECK_EQ(m.state, SUPERVISOR_RUNNING);
	CHECK_EQ(m.started_at, 5 * MS);
	/* Inputs that mean nothing in a state change nothing. */
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_DEADLINE, 6 * MS), 0);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_STARTED, 6 * MS), 0);
	CHECK_EQ(m.state, SUPERVISOR_RUNNING);
	CHECK_STR(supervisor_state_name(m.state), "running");
}

TEST(backoff_doubles_to_its_cap_then_throttles)
{
	struct supervisor_params p = defaults();
	struct supervisor_machine m;
	uint64_t now = 1000 * MS;
	static const uint64_t want[] = { 100, 200, 400, 800, 1000, 1000, 1000, 1000, 1000 };

	supervisor_machine_init(&m);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_STARTED, now), 0);
	/* Nine restarts, each after a 1 ms run: 10 starts in 6.4 s. */
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		CHECK_EQ(crash_and_restart(&m, &p, &now, 1), want[i]);
	CHECK_EQ(now, 1000 * MS + 9 * MS + 6500 * MS);
	/* The 10th exit within 30 s: throttled, and forgotten. */
	now += 1 * MS;
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_EXIT, now), SUPERVISOR_DO_THROTTLED | SUPERVISOR_DO_FREE);
	CHECK_EQ(m.state, SUPERVISOR_DONE);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_DEADLINE, now + 5000 * MS), 0);
}

TEST(a_healthy_run_resets_the_backoff)
{
	struct supervisor_params p = defaults();
	struct supervisor_machine m;
	uint64_t now = 0;

	supervisor_machine_init(&m);
	(void)supervisor_step(&m, &p, SUPERVISOR_STARTED, now);
	CHECK_EQ(crash_and_restart(&m, &p, &now, 1), 100);
	CHECK_EQ(crash_and_restart(&m, &p, &now, 1), 200);
	CHECK_EQ(crash_and_restart(&m, &p, &now, 9999), 400); /* just short of healthy */
	CHECK_EQ(crash_and_restart(&m, &p, &now, 10000), 0);  /* healthy: at once */
	CHECK_EQ(crash_and_restart(&m, &p, &now, 1), 100);
}

TEST(starts_outside_the_window_do_not_count)
{
	struct supervisor_params p = defaults();
	struct supervisor_machine m;
	uint64_t now = 0;

	supervisor_machine_init(&m);
	(void)supervisor_step(&m, &p, SUPERVISOR_STARTED, now);
	/* A start every 4 s (3 s runs, then 1 s backoff once capped): never
	 * 10 within 30 s, so never throttled. */
	for (int i = 0; i < 50; i++)
		CHECK(crash_and_restart(&m, &p, &now, 3000) != UINT64_MAX);
	CHECK_EQ(m.state, SUPERVISOR_RUNNING);
}

TEST(early_deadline_waits_on)
{
	struct supervisor_params p = defaults();
	struct supervisor_machine m;

	supervisor_machine_init(&m);
	(void)supervisor_step(&m, &p, SUPERVISOR_STARTED, 0);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_EXIT, 1 * MS), SUPERVISOR_DO_ARM);
	CHECK_EQ(m.deadline, 101 * MS);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_DEADLINE, 100 * MS), SUPERVISOR_DO_ARM);
	CHECK_EQ(m.state, SUPERVISOR_BACKOFF);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_DEADLINE, 101 * MS), SUPERVISOR_DO_SPAWN);
}

TEST(stop_in_each_state)
{
	struct supervisor_params p = defaults();
	struct supervisor_machine m;

	/* Running: it finishes, and is not restarted when it exits. */
	supervisor_machine_init(&m);
	(void)supervisor_step(&m, &p, SUPERVISOR_STARTED, 0);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_STOP, 1 * MS), 0);
	CHECK_EQ(m.state, SUPERVISOR_FINISHING);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_STOP, 1 * MS), 0);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_EXIT, 2 * MS), SUPERVISOR_DO_FREE);
	CHECK_EQ(m.state, SUPERVISOR_DONE);

	/* Waiting for its restart: forgotten at once, timer disarmed. */
	supervisor_machine_init(&m);
	(void)supervisor_step(&m, &p, SUPERVISOR_STARTED, 0);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_EXIT, 1 * MS), SUPERVISOR_DO_ARM);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_STOP, 2 * MS), SUPERVISOR_DO_DISARM | SUPERVISOR_DO_FREE);
	CHECK_EQ(m.state, SUPERVISOR_DONE);

	/* Being started: remembered, so that it then finishes. */
	supervisor_machine_init(&m);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_STOP, 0), 0);
	CHECK_EQ(m.state, SUPERVISOR_STARTING);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_STARTED, 0), 0);
	CHECK_EQ(m.state, SUPERVISOR_FINISHING);
}

TEST(spawn_failure_ends_it)
{
	struct supervisor_params p = defaults();
	struct supervisor_machine m;
	uint64_t now = 0;

	supervisor_machine_init(&m);
	(void)supervisor_step(&m, &p, SUPERVISOR_STARTED, now);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_EXIT, 1 * MS), SUPERVISOR_DO_ARM);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_DEADLINE, m.deadline), SUPERVISOR_DO_SPAWN);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_SPAWN_FAILED, m.deadline), SUPERVISOR_DO_FREE);
	CHECK_EQ(m.state, SUPERVISOR_DONE);
}

TEST(parameters_change_the_policy)
{
	struct supervisor_params p = defaults();
	struct supervisor_machine m;
	uint64_t now = 0;

	p.respawn_max = 3;
	p.backoff_min_usec = 1 * MS;
	p.backoff_max_usec = 3 * MS;
	supervisor_machine_init(&m);
	(void)supervisor_step(&m, &p, SUPERVISOR_STARTED, now);
	CHECK_EQ(crash_and_restart(&m, &p, &now, 1), 1);
	CHECK_EQ(crash_and_restart(&m, &p, &now, 1), 2);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_EXIT, now + 1 * MS), SUPERVISOR_DO_THROTTLED | SUPERVISOR_DO_FREE);

	/* No backoff at all, and more starts than the ring holds are clamped. */
	p = defaults();
	p.backoff_min_usec = p.backoff_max_usec = 0;
	p.respawn_max = 1000;
	supervisor_machine_init(&m);
	now = 0;
	(void)supervisor_step(&m, &p, SUPERVISOR_STARTED, now);
	for (unsigned i = 1; i < SUPERVISOR_RESPAWN_MAX_LIMIT; i++)
		CHECK_EQ(crash_and_restart(&m, &p, &now, 1), 0);
	CHECK_EQ(supervisor_step(&m, &p, SUPERVISOR_EXIT, now + 1 * MS), SUPERVISOR_DO_THROTTLED | SUPERVISOR_DO_FREE);
}

/* The binding: real processes, the loop's timers and child watches. */

static struct loop *L;
static unsigned n_exited, n_restarted, n_throttled, n_failed;

static void on_event(enum supervisor_event ev, const char *name, pid_t pid, int status, const struct spawn_error *err,
		     void *ud)
{
	switch (ev) {
	case SUPERVISOR_EXITED: n_exited++; break;
	case SUPERVISOR_RESTARTED: n_restarted++; break;
	case SUPERVISOR_THROTTLED:
		n_throttled++;
		loop_exit(L, 0);
		break;
	case SUPERVISOR_RESTART_FAILED:
		n_failed++;
		loop_exit(L, 0);
		break;
	}
}

static void on_guard(struct loop_timer *t, void *ud)
{
	loop_exit(L, 1);
}

TEST(crash_loop_is_throttled_through_the_loop)
{
	struct supervisor *s = NULL;
	struct loop_timer *guard = NULL;
	struct supervisor_params p = defaults();
	char *argv[] = { "true", NULL };
	struct job_spec spec = { .argv = argv, .respawn = true };
	struct spawn_error err;
	pid_t pid;

	n_exited = n_restarted = n_throttled = n_failed = 0;
	CHECK_EQ(loop_new(&L), 0);
	CHECK_EQ(supervisor_new(L, on_event, NULL, &s), 0);
	p.backoff_min_usec = 1 * MS;
	p.backoff_max_usec = 4 * MS;
	supervisor_set_params(s, &p);
	CHECK_EQ(loop_add_timer(L, now_usec() + 20 * USEC_PER_SEC, on_guard, NULL, &guard), 0);
	uint64_t start = now_usec();
	CHECK_EQ(supervisor_launch(s, &spec, NULL, NULL, &pid, &err), 0);
	CHECK_EQ(supervisor_services(s), 1);
	CHECK_EQ(loop_run(L), 0);
	CHECK(now_usec() - start < 10 * USEC_PER_SEC);
	CHECK_EQ(n_throttled, 1);
	CHECK_EQ(n_exited, 10);
	CHECK_EQ(n_restarted, 9);
	CHECK_EQ(supervisor_services(s), 0);
	loop_timer_free(guard);
	supervisor_free(s);
	loop_free(L);
}

TEST(restart_failure_through_the_loop)
{
	struct supervisor *s = NULL;
	struct loop_timer *guard = NULL;
	struct supervisor_params p = defaults();
	char path[] = "/tmp/valet-test-supervisor-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, "#!/bin/sh\nrm -f \"$0\"\n", 21) == 21);
	close(fd);
	CHECK(chmod(path, 0755) == 0);
	char *argv[] = { path, NULL };
	struct job_spec spec = { .argv = argv, .respawn = true };
	struct spawn_error err;
	pid_t pid;

	/* The script deletes itself: its restart cannot exec. */
	n_exited = n_restarted = n_throttled = n_failed = 0;
	CHECK_EQ(loop_new(&L), 0);
	CHECK_EQ(supervisor_new(L, on_event, NULL, &s), 0);
	p.backoff_min_usec = p.backoff_max_usec = 1 * MS;
	supervisor_set_params(s, &p);
	CHECK_EQ(loop_add_timer(L, now_usec() + 20 * USEC_PER_SEC, on_guard, NULL, &guard), 0);
	CHECK_EQ(supervisor_launch(s, &spec, NULL, NULL, &pid, &err), 0);
	CHECK_EQ(loop_run(L), 0);
	CHECK_EQ(n_exited, 1);
	CHECK_EQ(n_failed, 1);
	CHECK_EQ(n_restarted, 0);
	CHECK_EQ(supervisor_services(s), 0);
	loop_timer_free(guard);
	supervisor_free(s);
	loop_free(L);
}
