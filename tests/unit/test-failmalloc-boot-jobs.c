/* Allocation-failure sweep over a boot-job directory (a waited job, a bad
 * file, a plain job, a respawning one in a subdirectory): for every N, the
 * N-th allocation fails. Each run must reach the end of the jobs (after
 * which maitred serves), never wait for ever, and leak nothing; a run
 * without failures then starts them all again. */
#include <sys/stat.h>
#include <sys/wait.h>

#include "base/log.h"
#include "base/time-util.h"
#include "failmalloc.h"
#include "agent/agent.h"
#include "test.h"

#define GUARD_USEC (20 * USEC_PER_SEC)

static struct maitred M;
static struct boot_jobs *jobs;
static struct loop_timer *guard;
static bool hung, done;
static char dir[64];

static void on_done(void *userdata)
{
	struct maitred *m = userdata;
	done = true;
	if (loop_is_running(m->loop))
		loop_exit(m->loop, 0);
}

static void on_guard(struct loop_timer *t, void *ud)
{
	hung = true;
	loop_exit(M.loop, 0);
}

static void on_event(enum supervisor_event ev, const char *name, pid_t pid, int status, const struct spawn_error *err,
		     void *ud)
{
}

static void run_jobs(void)
{
	done = hung = false;
	maitred_run_boot_jobs(&M, dir, &jobs, on_done, &M);
	if (!done) {
		loop_timer_set(guard, now_usec() + GUARD_USEC);
		(void)loop_run(M.loop);
		loop_timer_set(guard, USEC_INFINITY);
	}
}

static void scenario(unsigned long n, unsigned long *ret_count)
{
	M = (struct maitred){ 0 };
	CHECK_EQ(loop_new(&M.loop), 0);
	CHECK_EQ(supervisor_new(M.loop, on_event, NULL, &M.supervisor), 0);
	CHECK_EQ(loop_add_timer(M.loop, USEC_INFINITY, on_guard, NULL, &guard), 0);

	failmalloc_arm(n);
	run_jobs();
	*ret_count = failmalloc_disarm();
	CHECK(!hung);
	CHECK(done);
	CHECK(!jobs);
	/* The respawning job, unless its launch failed. */
	if (!failmalloc_injected())
		CHECK_EQ(supervisor_services(M.supervisor), 1);
	supervisor_free(M.supervisor);
	CHECK_EQ(supervisor_new(M.loop, on_event, NULL, &M.supervisor), 0);
	run_jobs();
	CHECK(!hung);
	CHECK(done);
	CHECK_EQ(supervisor_services(M.supervisor), 1);
	supervisor_free(M.supervisor);
	loop_timer_free(guard);
	loop_free(M.loop);
}

static void write_file(const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

TEST(sweep_boot_job_directory)
{
	char sub[80];

	log_set_max_level(LOG_CRIT);
	snprintf(dir, sizeof(dir), "/tmp/valet-failmalloc-XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	CHECK_EQ(mkdir(sub, 0755), 0);
	write_file("10-first", "argv: \"sh\" argv: \"-c\" argv: \"exit $CODE\"\n"
			       "env { key: \"CODE\" value: \"0\" }\nwait_for_exit: true\n");
	write_file("20-bad", "argv: \"true\"\nrespawn: sometimes\n");
	write_file("30-plain", "argv: \"true\"\n");
	write_file("sub/40-respawn", "argv: \"true\" respawn: true\n");

	unsigned long total = failmalloc_sweep(NULL, scenario, FAILMALLOC_EACH_INJECTED);
	/* Nothing is left running: every job ends by itself; reap them. */
	while (waitpid(-1, NULL, 0) > 0)
		;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK_EQ(system(cmd), 0);
	CHECK(total > 20);
}
