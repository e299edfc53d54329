/* PID 1's power-off sequence (the lifecycle's POWERING_OFF; the mechanics
 * are init/power-off.c), as a state machine on the event loop so that
 * reaping, the answers to waiting LaunchProcess calls and the Shutdown
 * reply all keep flowing while it runs:
 *
 *   SIGTERM+SIGCONT to everyone -> wait until nobody is left or the grace
 *   period ends -> SIGKILL the rest -> wait (bounded) -> sync, unmount,
 *   sync -> answer Shutdown -> done (the lifecycle's POWER_OFF_DONE: the
 *   loop is left) once every connection has flushed (or after FLUSH_MAX)
 *   -> main calls reboot(RB_POWER_OFF).
 *
 * It knows nothing of the lifecycle: it is started by it (agent/service.c)
 * and reports its end through the done callback. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/time-util.h"
#include "common.pb-c.h"
#include "init/power-off.h"
#include "agent.h"

#define POLL_USEC (10 * 1000ull)
#define KILL_WAIT_USEC (3 * 1000000ull)
#define FLUSH_MAX_USEC (2 * 1000000ull)

enum stage {
	STAGE_TERM,
	STAGE_KILL,
	STAGE_FLUSH,
};

struct power_off_sequence {
	void (*done)(void *userdata);
	void *userdata;
	struct rpc_call *call; /* the Shutdown call to answer, if any */
	struct loop_timer *timer;
	enum stage stage;
	uint64_t started, deadline;
	bool server_stopped;
};

static void power_off_tick(struct loop_timer *t, void *userdata);

static void call_gone(struct rpc_call *call, void *userdata)
{
	struct power_off_sequence *p = userdata;
	log_info("Shutdown: caller went away; powering off anyway");
	p->call = NULL;
}

static void server_stopped(void *userdata)
{
	struct power_off_sequence *p = userdata;
	p->server_stopped = true;
	if (p->stage == STAGE_FLUSH)
		p->done(p->userdata);
}

static void report_unmount(const char *mount_point, int error, bool remounted, void *userdata)
{
	log_warning_errno(error, "could not unmount %s%s", mount_point,
			  remounted ? "; remounted read-only" : " nor remount it read-only");
}

static void finish(struct power_off_sequence *p)
{
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;

	sync();
	power_off_unmount_all(report_unmount, p);
	sync();
	log_info("Power-off: processes gone, file systems unmounted after %.0f ms",
		 (double)(now_usec() - p->started) / 1000);
	if (p->call) {
		rpc_call_set_cancel(p->call, NULL, NULL);
		rpc_call_reply(p->call, &resp.base);
		p->call = NULL;
	}
	p->stage = STAGE_FLUSH;
	if (p->server_stopped) {
		p->done(p->userdata);
		return;
	}
	/* A client that keeps an idle connection open cannot hold power-off. */
	loop_timer_set(p->timer, now_usec() + FLUSH_MAX_USEC);
}

static void start_kill(struct power_off_sequence *p)
{
	if (power_off_children_left()) {
		log_warning("Power-off: processes left after the grace period; sending SIGKILL");
		(void)power_off_signal_all(SIGKILL);
	}
	p->stage = STAGE_KILL;
	p->deadline = now_usec() + KILL_WAIT_USEC;
}

static void power_off_tick(struct loop_timer *t, void *userdata)
{
	struct power_off_sequence *p = userdata;
	uint64_t now = now_usec();

	bool left;

	switch (p->stage) {
	case STAGE_TERM:
		if (power_off_children_left() && now < p->deadline)
			break;
		start_kill(p);
		/* fall through */
	case STAGE_KILL:
		left = power_off_children_left();
		if (left && now < p->deadline)
			break;
		if (left)
			log_warning("Power-off: processes still there after SIGKILL; going on");
		finish(p);
		return;
	case STAGE_FLUSH:
		log_info("Power-off: connections still open; not waiting for them");
		p->done(p->userdata);
		return;
	}
	loop_timer_set(t, now + POLL_USEC);
}

int maitred_power_off_start(struct maitred *m, struct rpc_server *server, struct rpc_call *call,
			    void (*done)(void *userdata), void *userdata, struct power_off_sequence **slot)
{
	struct power_off_sequence *p = calloc(1, sizeof(*p));

	if (!p || loop_add_timer(m->loop, now_usec() + POLL_USEC, power_off_tick, p, &p->timer) < 0) {
		free(p);
		return -ENOMEM;
	}
	*slot = p;
	p->done = done;
	p->userdata = userdata;
	p->started = now_usec();
	p->deadline = p->started + m->opts.shutdown_grace_usec;
	p->stage = STAGE_TERM;
	if (call) {
		p->call = call;
		rpc_call_set_cancel(call, call_gone, p);
	}

	supervisor_stop_respawning(m->supervisor);
	rpc_server_stop(server, server_stopped, p);
	log_info("Power-off: sending SIGTERM to all processes (grace %.1f s)",
		 (double)m->opts.shutdown_grace_usec / 1e6);
	if (power_off_signal_all(SIGTERM) == 0)
		(void)power_off_signal_all(SIGCONT);
	return 0;
}

void maitred_power_off_free(struct power_off_sequence **slot)
{
	struct power_off_sequence *p = TAKE_PTR(*slot);

	if (!p)
		return;
	loop_timer_free(p->timer);
	free(p);
}
