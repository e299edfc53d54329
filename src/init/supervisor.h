/* Starts processes for maitred (LaunchProcess, boot jobs) and keeps the
 * respawning ones alive, as a state machine driven by child exits and
 * monotonic deadlines.
 *
 * Respawn policy: a job is restarted when it exits, unless it has been
 * started 10 times within the last 30 s; then it stays stopped until a new
 * launch. Restarts are delayed by a backoff: none after a run of 10 s or
 * more, otherwise 100 ms doubling per consecutive short run, capped at 1 s
 * (so a crash loop still reaches the throttle in about 6.5 s). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "base/spawn.h"
#include "loop/loop.h"

#define SUPERVISOR_RESPAWN_MAX 10
#define SUPERVISOR_RESPAWN_WINDOW_USEC (30 * 1000000ull)
#define SUPERVISOR_HEALTHY_RUN_USEC (10 * 1000000ull)
#define SUPERVISOR_BACKOFF_MIN_USEC (100 * 1000ull)
#define SUPERVISOR_BACKOFF_MAX_USEC (1000 * 1000ull)

struct supervisor;

struct job_spec {
	char *const *argv;
	/* "K=V" entries laid over the supervisor's base environment. */
	char *const *env;
	bool respawn;
	bool use_console;
};

enum supervisor_event {
	SUPERVISOR_EXITED,	   /* a job nobody waits for ended (status valid) */
	SUPERVISOR_RESTARTED,	   /* it was started again (pid valid) */
	SUPERVISOR_THROTTLED,	   /* too many starts: stopped for good */
	SUPERVISOR_RESTART_FAILED, /* the restart could not exec (error valid) */
};

typedef void (*supervisor_event_fn)(enum supervisor_event ev, const char *name, pid_t pid, int status,
				    const struct spawn_error *error, void *userdata);
/* For a launch that is waited for: status as from waitpid(). */
typedef void (*supervisor_exit_fn)(pid_t pid, int status, void *userdata);

int supervisor_new(struct loop *l, supervisor_event_fn on_event, void *userdata, struct supervisor **ret);
void supervisor_free(struct supervisor *s);
DEFINE_FREEP(struct supervisor, supervisor_free)

/* Starts a job. Returns 0 with *ret_pid when exec succeeded, SPAWN_FAILED
 * with *ret_error when it did not, -errno on other failures (then nothing
 * was started: what the bookkeeping needs is allocated first). After 0,
 * on_exit, if given, runs when that process ends (not with respawn). */
int supervisor_launch(struct supervisor *s, const struct job_spec *spec, supervisor_exit_fn on_exit, void *userdata,
		      pid_t *ret_pid, struct spawn_error *ret_error);
/* Stops every respawning job from being restarted (for shutdown). */
void supervisor_stop_respawning(struct supervisor *s);
unsigned supervisor_services(const struct supervisor *s);
