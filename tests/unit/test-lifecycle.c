/* maitred's lifecycle (agent/lifecycle.c): every path through the states,
 * and the inputs each state ignores. */
#include "agent/lifecycle.h"
#include "test.h"

static enum maitred_state st;

static unsigned feed(enum maitred_input in)
{
	return maitred_lifecycle_step(&st, in);
}

TEST(boot_jobs_then_serving_then_stop)
{
	st = MAITRED_BOOTING;
	CHECK_EQ(feed(MAITRED_RUN_BOOT_JOBS), MAITRED_DO_RUN_BOOT_JOBS);
	CHECK_EQ(st, MAITRED_BOOT_JOBS);
	CHECK_EQ(feed(MAITRED_RUN_BOOT_JOBS), 0);
	CHECK_EQ(feed(MAITRED_BOOT_JOBS_DONE), MAITRED_DO_SERVE);
	CHECK_EQ(st, MAITRED_SERVING);
	CHECK_EQ(feed(MAITRED_BOOT_JOBS_DONE), 0);
	CHECK_EQ(feed(MAITRED_SERVER_STOPPED), 0); /* only after a stop */
	CHECK_EQ(feed(MAITRED_STOP), MAITRED_DO_STOP);
	CHECK_EQ(st, MAITRED_STOPPING);
	CHECK_EQ(feed(MAITRED_STOP), 0); /* a second SIGTERM or Shutdown */
	CHECK_EQ(feed(MAITRED_POWER_OFF), 0);
	CHECK_EQ(feed(MAITRED_SERVER_STOPPED), MAITRED_DO_EXIT);
	CHECK_EQ(st, MAITRED_DONE);
	CHECK_STR(maitred_state_name(st), "done");
}

TEST(no_boot_jobs_serves_at_once)
{
	st = MAITRED_BOOTING;
	CHECK_EQ(feed(MAITRED_BOOT_JOBS_DONE), MAITRED_DO_SERVE);
	CHECK_EQ(st, MAITRED_SERVING);
	CHECK_EQ(feed(MAITRED_RUN_BOOT_JOBS), 0);
}

TEST(listen_failure_fails)
{
	st = MAITRED_BOOTING;
	CHECK_EQ(feed(MAITRED_LISTEN_FAILED), 0);
	(void)feed(MAITRED_BOOT_JOBS_DONE);
	CHECK_EQ(feed(MAITRED_LISTEN_FAILED), MAITRED_DO_EXIT_FAILED);
	CHECK_EQ(st, MAITRED_FAILED);
	CHECK_EQ(feed(MAITRED_STOP), 0);
	CHECK_EQ(feed(MAITRED_POWER_OFF), 0);
	CHECK(maitred_state_is_ending(st));
}

TEST(stop_while_a_boot_job_is_waited_for_serves_nothing)
{
	st = MAITRED_BOOTING;
	(void)feed(MAITRED_RUN_BOOT_JOBS);
	CHECK(!maitred_state_is_ending(st));
	CHECK_EQ(feed(MAITRED_STOP), MAITRED_DO_STOP);
	CHECK(maitred_state_is_ending(st));
	CHECK_EQ(feed(MAITRED_BOOT_JOBS_DONE), 0); /* the job ended: no server */
	CHECK_EQ(st, MAITRED_STOPPING);
	CHECK_EQ(feed(MAITRED_SERVER_STOPPED), MAITRED_DO_EXIT);
}

TEST(power_off_from_every_running_state)
{
	static const enum maitred_state from[] = { MAITRED_BOOTING, MAITRED_BOOT_JOBS, MAITRED_SERVING };
	for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
		st = from[i];
		CHECK_EQ(feed(MAITRED_POWER_OFF), MAITRED_DO_POWER_OFF);
		CHECK_EQ(st, MAITRED_POWERING_OFF);
		/* A second Shutdown is refused; a signal changes nothing. */
		CHECK_EQ(feed(MAITRED_POWER_OFF), MAITRED_DO_REFUSE_SHUTDOWN);
		CHECK_EQ(feed(MAITRED_STOP), 0);
		CHECK_EQ(feed(MAITRED_BOOT_JOBS_DONE), 0);
		CHECK_EQ(feed(MAITRED_SERVER_STOPPED), 0); /* the sequence hears of it */
		CHECK_EQ(st, MAITRED_POWERING_OFF);
		CHECK_EQ(feed(MAITRED_POWER_OFF_DONE), MAITRED_DO_EXIT);
		CHECK_EQ(st, MAITRED_DONE);
		CHECK_EQ(feed(MAITRED_POWER_OFF_DONE), 0);
	}
}
