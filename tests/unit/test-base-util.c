/* base's small shared pieces: the wait-status formatter and environment
 * lookup. Statuses come from real children, not from hand-made numbers. */
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "base/strv.h"
#include "base/wait-status.h"
#include "test.h"

/* The status of a child that exits with code, or (sig != 0) kills itself. */
static int child_status(int code, int sig)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (sig) {
			/* No core file on the test machine. */
			setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });
			signal(sig, SIG_DFL);
			raise(sig);
		}
		_exit(code);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	return status;
}

TEST(wait_status_exit)
{
	char buf[WAIT_STATUS_STR_MAX];
	int st = child_status(3, 0);
	CHECK_STR(wait_status_str(st, buf), "exited with status 3");
	CHECK_EQ(wait_status_code(st), 3);
	st = child_status(0, 0);
	CHECK_STR(wait_status_str(st, buf), "exited with status 0");
	CHECK_EQ(wait_status_code(st), 0);
}

TEST(wait_status_signal)
{
	char buf[WAIT_STATUS_STR_MAX];
	int st = child_status(0, SIGTERM);
	CHECK_STR(wait_status_str(st, buf), "killed by signal 15 (SIGTERM)");
	CHECK_EQ(wait_status_code(st), 143);
	st = child_status(0, SIGKILL);
	CHECK_STR(wait_status_str(st, buf), "killed by signal 9 (SIGKILL)");
	CHECK_EQ(wait_status_code(st), 137);
}

TEST(wait_status_longest_fits)
{
	/* A real-time signal has no abbreviation: the text still ends. */
	char buf[WAIT_STATUS_STR_MAX];
	int st = child_status(0, SIGRTMAX);
	wait_status_str(st, buf);
	CHECK(strlen(buf) < sizeof(buf));
	CHECK(strncmp(buf, "killed by signal ", 17) == 0);
	CHECK_EQ(wait_status_code(st), 128 + SIGRTMAX);
}

TEST(env_lookup)
{
	char *env[] = { "PATHX=no", "PATH=/bin", "EMPTY=", "NOEQUALS", NULL };
	CHECK_STR(strv_env_get(env, "PATH"), "/bin");
	CHECK_STR(strv_env_get(env, "EMPTY"), "");
	CHECK(strv_env_get(env, "PAT") == NULL);
	CHECK(strv_env_get(env, "NOEQUALS") == NULL);
	CHECK(strv_env_get(NULL, "PATH") == NULL);
	CHECK(strv_env_find(env, "PATHX") == &env[0]);
}
