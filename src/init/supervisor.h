/* Starts processes for maitred (LaunchProcess, boot jobs) and keeps the
 * respawning ones alive.
 *
 * Respawn policy (the defaults; struct supervisor_params changes them at run
 * time): a job is restarted when it exits, unless it has been started 10
 * times within the last 30 s; then it stays stopped until a new launch.
 * Restarts are delayed by a backoff: none after a run of 10 s or more,
 * otherwise 100 ms doubling per consecutive short run, capped at 1 s (so a
 * crash loop still reaches the throttle in about 6.5 s).
 *
 * Each respawning job is a state machine, state x input -> state + actions
 * (s6-supervise's model), in supervisor_step(): pure, given the time, so
 * that it is tested with a fake clock. supervisor.c binds it to the loop:
 * child exits and a restart timer feed it inputs, and it carries out the
 * actions (spawn, arm the timer, report, free).
 *
 *   STARTING --STARTED------> RUNNING (FINISHING if a STOP came first)
 *   STARTING --SPAWN_FAILED-> DONE
 *   RUNNING  --EXIT---------> BACKOFF, restart due at deadline; or DONE
 *                             (throttled) when respawn_max starts fall
 *                             within the window
 *   BACKOFF  --DEADLINE-----> STARTING
 *   RUNNING  --STOP---------> FINISHING --EXIT--> DONE
 *   BACKOFF  --STOP---------> DONE
 *
 * A launch starts in STARTING (the first spawn is supervisor_launch()'s).
 * STARTING: a start was decided; the binding spawns and feeds STARTED or
 *   SPAWN_FAILED (a STOP meanwhile is remembered: STARTED then leads to
 *   FINISHING).
 * RUNNING: the process is alive and will be restarted when it exits.
 * BACKOFF: it exited; the restart is due at deadline.
 * FINISHING: alive, but respawning was stopped: it is not restarted.
 * DONE: throttled, failed to restart, or stopped: the binding frees it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/spawn.h"
#include "loop/loop.h"

#define SUPERVISOR_RESPAWN_MAX 10
#define SUPERVISOR_RESPAWN_WINDOW_USEC (30 * 1000000ull)
#define SUPERVISOR_HEALTHY_RUN_USEC (10 * 1000000ull)
#define SUPERVISOR_BACKOFF_MIN_USEC (100 * 1000ull)
#define SUPERVISOR_BACKOFF_MAX_USEC (1000 * 1000ull)
/* The most starts a window may count (the ring of start times). */
#define SUPERVISOR_RESPAWN_MAX_LIMIT 64

struct supervisor_params {
	unsigned respawn_max; /* 1..SUPERVISOR_RESPAWN_MAX_LIMIT */
	uint64_t respawn_window_usec;
	uint64_t healthy_run_usec;
	uint64_t backoff_min_usec, backoff_max_usec;
};
/* The defaults above. */
void supervisor_params_init(struct supervisor_params *p);

enum supervisor_state {
	SUPERVISOR_STARTING,
	SUPERVISOR_RUNNING,
	SUPERVISOR_BACKOFF,
	SUPERVISOR_FINISHING,
	SUPERVISOR_DONE,
};

enum supervisor_input {
	SUPERVISOR_STARTED,	 /* the process exists */
	SUPERVISOR_SPAWN_FAILED, /* it could not be started */
	SUPERVISOR_EXIT,	 /* it ended */
	SUPERVISOR_DEADLINE,	 /* the restart timer fired */
	SUPERVISOR_STOP,	 /* respawning stopped (shutdown) */
};

/* Actions supervisor_step() asks for, a bit set, carried out in this order. */
enum {
	SUPERVISOR_DO_THROTTLED = 1 << 0, /* report SUPERVISOR_THROTTLED */
	SUPERVISOR_DO_ARM = 1 << 1,	  /* arm the restart timer at deadline */
	SUPERVISOR_DO_DISARM = 1 << 2,	  /* disarm it */
	SUPERVISOR_DO_SPAWN = 1 << 3,	  /* start the process, feed the outcome */
	SUPERVISOR_DO_FREE = 1 << 4,	  /* forget the job */
};

struct supervisor_machine {
	enum supervisor_state state;
	bool stop_wanted;
	uint64_t starts[SUPERVISOR_RESPAWN_MAX_LIMIT]; /* ring of start times */
	unsigned n_starts, next_start;
	uint64_t started_at;
	unsigned short_runs; /* consecutive runs shorter than healthy_run_usec */
	uint64_t deadline;   /* BACKOFF: when to start again */
};

/* A job about to be started for the first time: STARTING. */
void supervisor_machine_init(struct supervisor_machine *m);
/* The transition function: returns SUPERVISOR_DO_* bits. Inputs that mean
 * nothing in a state are ignored (0). */
unsigned supervisor_step(struct supervisor_machine *m, const struct supervisor_params *p, enum supervisor_input in,
			 uint64_t now);
const char *supervisor_state_name(enum supervisor_state s);

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
/* The respawn policy of every job, from its next input on. */
void supervisor_set_params(struct supervisor *s, const struct supervisor_params *p);
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
