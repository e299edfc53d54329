/* maitred's lifecycle as a state machine: state x input -> state + actions.
 * maitred_lifecycle_step() is pure; agent/service.c's maitred_input() feeds it
 * and carries the actions out.
 *
 *   BOOTING --RUN_BOOT_JOBS--> BOOT_JOBS --BOOT_JOBS_DONE--> SERVING
 *   BOOTING --BOOT_JOBS_DONE--> SERVING               (no boot jobs to run)
 *   SERVING --LISTEN_FAILED--> FAILED
 *   BOOTING, BOOT_JOBS, SERVING --STOP--> STOPPING --SERVER_STOPPED--> DONE
 *   BOOTING, BOOT_JOBS, SERVING --POWER_OFF--> POWERING_OFF
 *   POWERING_OFF --POWER_OFF_DONE--> DONE
 *
 * BOOTING: setting up (as PID 1: the system), no boot jobs started yet.
 * BOOT_JOBS: the boot jobs run; a wait_for_exit job holds back the rest
 *   and the server.
 * SERVING: listening; VmReady sent.
 * STOPPING: not PID 1 (Shutdown, SIGTERM, SIGINT): no new connections or
 *   launches, respawning stopped, the calls in flight finish; then DONE.
 * POWERING_OFF: PID 1 (Shutdown, SIGTERM, SIGINT, SIGPWR): the power-off
 *   sequence of power-off-sequence.c (its own stages: TERM, KILL, FLUSH)
 *   runs; then DONE, and main powers the machine off.
 * FAILED: a listener could not be opened: maitred ends with status 1.
 * DONE: the loop is left with status 0.
 *
 * STOP or POWER_OFF while stopping or powering off change nothing (a second
 * Shutdown is refused while powering off); boot jobs that end after a STOP
 * start no server. */
#pragma once

enum maitred_state {
	MAITRED_BOOTING,
	MAITRED_BOOT_JOBS,
	MAITRED_SERVING,
	MAITRED_STOPPING,
	MAITRED_POWERING_OFF,
	MAITRED_FAILED,
	MAITRED_DONE,
};

enum maitred_input {
	MAITRED_RUN_BOOT_JOBS,
	MAITRED_BOOT_JOBS_DONE, /* all started, the waited-for ones ended */
	MAITRED_LISTEN_FAILED,
	MAITRED_STOP,
	MAITRED_POWER_OFF,
	MAITRED_SERVER_STOPPED, /* every connection closed after a stop */
	MAITRED_POWER_OFF_DONE,
};

/* Actions, a bit set, carried out in this order. */
enum {
	MAITRED_DO_RUN_BOOT_JOBS = 1 << 0,
	MAITRED_DO_SERVE = 1 << 1,	     /* listen, tell the service manager and the host */
	MAITRED_DO_STOP = 1 << 2,	     /* stop accepting, respawning, VmReady */
	MAITRED_DO_POWER_OFF = 1 << 3,	     /* start the power-off sequence */
	MAITRED_DO_REFUSE_SHUTDOWN = 1 << 4, /* already powering off */
	MAITRED_DO_EXIT = 1 << 5,	     /* leave the loop with 0 */
	MAITRED_DO_EXIT_FAILED = 1 << 6,     /* leave the loop with 1 */
};

/* The transition function: moves *state, returns MAITRED_DO_* bits. */
unsigned maitred_lifecycle_step(enum maitred_state *state, enum maitred_input in);
const char *maitred_state_name(enum maitred_state s);
/* Stopping, powering off or ended: no new boot jobs, launches or server. */
static inline int maitred_state_is_ending(enum maitred_state s)
{
	return s >= MAITRED_STOPPING;
}
