#include "supervisor.h"

#include <stdio.h>
#include <string.h>

#include "base/list.h"
#include "base/strv.h"
#include "base/time-util.h"

extern char **environ;

struct service {
	struct supervisor *sup;
	char **argv;
	char **envp;
	bool use_console;
	struct supervisor_machine fsm;
	pid_t pid;
	struct loop_child *watch; /* allocated at launch, started at each spawn */
	struct loop_timer *restart;
	struct service *prev, *next;
};

struct supervisor {
	struct loop *loop;
	supervisor_event_fn on_event;
	void *userdata;
	struct service *services;
	unsigned n_services;
	struct waiter *waiters; /* launches that are not respawned, still running */
	struct supervisor_params params;
	/* After supervisor_stop_respawning(): new respawning launches get
	 * SUPERVISOR_STOP at once. */
	bool respawn_stopped;
};

struct waiter {
	struct supervisor *sup;
	supervisor_exit_fn fn;
	void *userdata;
	char name[64];
	struct loop_child *watch;
	struct waiter *prev, *next;
};

static bool env_overridden(const char *entry, char *const *over)
{
	size_t klen = strcspn(entry, "=");
	for (; over && *over; over++)
		if (strncmp(*over, entry, klen) == 0 && (*over)[klen] == '=')
			return true;
	return false;
}

/* The base environment with the job's entries laid over it. */
static char **env_build(char *const *over)
{
	size_t n = 0, m = 0, k = 0;
	while (environ && environ[n])
		n++;
	while (over && over[m])
		m++;
	_cleanup_(strv_freep) char **e = calloc(n + m + 1, sizeof(char *));
	if (!e)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!env_overridden(environ[i], over) && !(e[k++] = strdup(environ[i])))
			return NULL;
	for (size_t i = 0; i < m; i++)
		if (!(e[k++] = strdup(over[i])))
			return NULL;
	return TAKE_PTR(e);
}

static int spawn_job(char *const *argv, char *const *envp, bool use_console, pid_t *ret_pid,
		     struct spawn_error *ret_error)
{
	struct spawn_params p;

	spawn_params_init(&p);
	p.argv = argv;
	p.envp = envp;
	p.new_session = true;
	p.stdio_path = use_console ? "/dev/console" : "/dev/null";
	p.umask = 022;
	return spawn_process(&p, ret_pid, ret_error);
}

int supervisor_new(struct loop *l, supervisor_event_fn on_event, void *userdata, struct supervisor **ret)
{
	struct supervisor *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct supervisor){ .loop = l, .on_event = on_event, .userdata = userdata };
	supervisor_params_init(&s->params);
	*ret = s;
	return 0;
}

void supervisor_set_params(struct supervisor *s, const struct supervisor_params *p)
{
	s->params = *p;
}

static void waiter_unlink(struct waiter *w);
static void waiter_free(struct waiter *w);

static void service_free_unlinked(struct service *svc)
{
	if (svc) {
		loop_child_free(svc->watch);
		loop_timer_free(svc->restart);
		strv_free(svc->argv);
		strv_free(svc->envp);
		free(svc);
	}
}
/* Not yet in the list (a launch being set up). */
DEFINE_FREEP(struct service, service_free_unlinked)

static void service_free(struct service *svc)
{
	struct supervisor *s = svc->sup;
	LIST_REMOVE(s->services, svc);
	s->n_services--;
	service_free_unlinked(svc);
}

void supervisor_free(struct supervisor *s)
{
	if (!s)
		return;
	/* Running processes are left running; only the bookkeeping goes. */
	while (s->services)
		service_free(s->services);
	while (s->waiters) {
		struct waiter *w = s->waiters;
		waiter_unlink(w);
		waiter_free(w);
	}
	free(s);
}

/* The state machine: pure, given now. */

void supervisor_params_init(struct supervisor_params *p)
{
	*p = (struct supervisor_params){
		.respawn_max = SUPERVISOR_RESPAWN_MAX,
		.respawn_window_usec = SUPERVISOR_RESPAWN_WINDOW_USEC,
		.healthy_run_usec = SUPERVISOR_HEALTHY_RUN_USEC,
		.backoff_min_usec = SUPERVISOR_BACKOFF_MIN_USEC,
		.backoff_max_usec = SUPERVISOR_BACKOFF_MAX_USEC,
	};
}

const char *supervisor_state_name(enum supervisor_state st)
{
	static const char *const names[] = {
		[SUPERVISOR_STARTING] = "starting", [SUPERVISOR_RUNNING] = "running",
		[SUPERVISOR_BACKOFF] = "backoff",   [SUPERVISOR_FINISHING] = "finishing",
		[SUPERVISOR_DONE] = "done",
	};
	return (unsigned)st < ARRAY_SIZE(names) ? names[st] : "?";
}

void supervisor_machine_init(struct supervisor_machine *m)
{
	*m = (struct supervisor_machine){ .state = SUPERVISOR_STARTING };
}

static unsigned respawn_max(const struct supervisor_params *p)
{
	return MAX(1u, MIN(p->respawn_max, (unsigned)SUPERVISOR_RESPAWN_MAX_LIMIT));
}

static void note_start(struct supervisor_machine *m, const struct supervisor_params *p, uint64_t now)
{
	m->starts[m->next_start] = now;
	m->next_start = (m->next_start + 1) % respawn_max(p);
	if (m->n_starts < respawn_max(p))
		m->n_starts++;
	m->started_at = now;
}

/* Starts within the window. */
static unsigned recent_starts(const struct supervisor_machine *m, const struct supervisor_params *p, uint64_t now)
{
	unsigned n = 0;
	for (unsigned i = 0; i < m->n_starts; i++)
		if (now - m->starts[i] < p->respawn_window_usec)
			n++;
	return n;
}

/* RUNNING, and the process ended: throttle, or restart after the backoff. */
static unsigned on_exit_running(struct supervisor_machine *m, const struct supervisor_params *p, uint64_t now)
{
	uint64_t delay = 0;

	if (recent_starts(m, p, now) >= respawn_max(p)) {
		m->state = SUPERVISOR_DONE;
		return SUPERVISOR_DO_THROTTLED | SUPERVISOR_DO_FREE;
	}
	if (now - m->started_at >= p->healthy_run_usec)
		m->short_runs = 0;
	else {
		unsigned shift = MIN(m->short_runs, 10u);
		delay = MIN(p->backoff_min_usec << shift, p->backoff_max_usec);
		m->short_runs++;
	}
	m->state = SUPERVISOR_BACKOFF;
	m->deadline = now + delay;
	return SUPERVISOR_DO_ARM;
}

unsigned supervisor_step(struct supervisor_machine *m, const struct supervisor_params *p, enum supervisor_input in,
			 uint64_t now)
{
	if (in == SUPERVISOR_STOP)
		m->stop_wanted = true;
	switch (m->state) {
	case SUPERVISOR_STARTING:
		if (in == SUPERVISOR_STARTED) {
			note_start(m, p, now);
			m->state = m->stop_wanted ? SUPERVISOR_FINISHING : SUPERVISOR_RUNNING;
		} else if (in == SUPERVISOR_SPAWN_FAILED) {
			m->state = SUPERVISOR_DONE;
			return SUPERVISOR_DO_FREE;
		}
		return 0;
	case SUPERVISOR_RUNNING:
		if (in == SUPERVISOR_EXIT)
			return on_exit_running(m, p, now);
		if (in == SUPERVISOR_STOP)
			m->state = SUPERVISOR_FINISHING;
		return 0;
	case SUPERVISOR_BACKOFF:
		if (in == SUPERVISOR_STOP) {
			m->state = SUPERVISOR_DONE;
			return SUPERVISOR_DO_DISARM | SUPERVISOR_DO_FREE;
		}
		if (in != SUPERVISOR_DEADLINE)
			return 0;
		if (now < m->deadline)
			return SUPERVISOR_DO_ARM; /* early: wait on */
		m->state = SUPERVISOR_STARTING;
		return SUPERVISOR_DO_SPAWN;
	case SUPERVISOR_FINISHING:
		if (in == SUPERVISOR_EXIT) {
			m->state = SUPERVISOR_DONE;
			return SUPERVISOR_DO_FREE;
		}
		return 0;
	case SUPERVISOR_DONE: return 0;
	}
	return 0;
}

/* The binding: the machine's inputs from the loop, its actions on it. */

static void service_on_exit(pid_t pid, int status, void *userdata);
static void service_act(struct service *svc, unsigned actions, pid_t pid, int status);

static void service_input(struct service *svc, enum supervisor_input in, pid_t pid, int status)
{
	service_act(svc, supervisor_step(&svc->fsm, &svc->sup->params, in, now_usec()), pid, status);
}

/* SUPERVISOR_DO_SPAWN: start it again, and tell the machine how it went. */
static void service_spawn(struct service *svc)
{
	struct supervisor *s = svc->sup;
	struct spawn_error err = { 0 };
	int r;

	/* The watch was allocated at launch: once the process exists,
	 * nothing can fail. */
	r = spawn_job(svc->argv, svc->envp, svc->use_console, &svc->pid, &err);
	if (r != 0) {
		if (r < 0)
			err = (struct spawn_error){ .stage = SPAWN_STAGE_NONE, .error = -r };
		svc->pid = 0;
		s->on_event(SUPERVISOR_RESTART_FAILED, svc->argv[0], 0, 0, &err, s->userdata);
		service_input(svc, SUPERVISOR_SPAWN_FAILED, 0, 0);
		return;
	}
	loop_child_watch(svc->watch, svc->pid, service_on_exit, svc);
	pid_t pid = svc->pid;
	service_input(svc, SUPERVISOR_STARTED, pid, 0);
	s->on_event(SUPERVISOR_RESTARTED, svc->argv[0], pid, 0, NULL, s->userdata);
}

static void service_act(struct service *svc, unsigned actions, pid_t pid, int status)
{
	struct supervisor *s = svc->sup;

	if (actions & SUPERVISOR_DO_THROTTLED)
		s->on_event(SUPERVISOR_THROTTLED, svc->argv[0], pid, status, NULL, s->userdata);
	/* The timer was allocated at launch, so arming it cannot fail. */
	if (actions & SUPERVISOR_DO_ARM)
		loop_timer_set(svc->restart, svc->fsm.deadline);
	if (actions & SUPERVISOR_DO_DISARM)
		loop_timer_set(svc->restart, USEC_INFINITY);
	if (actions & SUPERVISOR_DO_SPAWN)
		service_spawn(svc);
	if (actions & SUPERVISOR_DO_FREE)
		service_free(svc);
}

static void service_restart(struct loop_timer *t, void *userdata)
{
	service_input(userdata, SUPERVISOR_DEADLINE, 0, 0);
}

static void service_on_exit(pid_t pid, int status, void *userdata)
{
	struct service *svc = userdata;
	struct supervisor *s = svc->sup;

	/* The watch is inactive now, kept for the next start. */
	svc->pid = 0;
	s->on_event(SUPERVISOR_EXITED, svc->argv[0], pid, status, NULL, s->userdata);
	service_input(svc, SUPERVISOR_EXIT, pid, status);
}

static void waiter_unlink(struct waiter *w)
{
	LIST_REMOVE(w->sup->waiters, w);
}

static void waiter_on_exit(pid_t pid, int status, void *userdata)
{
	struct waiter *w = userdata;
	supervisor_exit_fn fn = w->fn;
	void *ud = w->userdata;

	waiter_unlink(w);
	/* A waited-for process is reported by its waiter. */
	if (!fn)
		w->sup->on_event(SUPERVISOR_EXITED, w->name, pid, status, NULL, w->sup->userdata);
	waiter_free(w); /* its watch too, from the watch's own callback */
	if (fn)
		fn(pid, status, ud);
}

static void waiter_free(struct waiter *w)
{
	if (w) {
		loop_child_free(w->watch);
		free(w);
	}
}
DEFINE_FREEP(struct waiter, waiter_free)


/* Everything a launch needs is allocated before the process is started:
 * afterwards nothing can fail, so a started process is always watched (its
 * exit reported, its respawns scheduled), and a failure means that nothing
 * was started. */
int supervisor_launch(struct supervisor *s, const struct job_spec *spec, supervisor_exit_fn on_exit, void *userdata,
		      pid_t *ret_pid, struct spawn_error *ret_error)
{
	_cleanup_(strv_freep) char **envp = env_build(spec->env);
	_cleanup_(waiter_freep) struct waiter *w = NULL;
	_cleanup_(service_free_unlinkedp) struct service *svc = NULL;
	pid_t pid;
	int r;

	if (!envp)
		return -ENOMEM;
	if (!spec->respawn) {
		w = calloc(1, sizeof(*w));
		if (!w)
			return -ENOMEM;
		*w = (struct waiter){ .sup = s, .fn = on_exit, .userdata = userdata };
		snprintf(w->name, sizeof(w->name), "%s", spec->argv[0]);
		r = loop_child_new(s->loop, &w->watch);
		if (r < 0)
			return r;
	} else {
		svc = calloc(1, sizeof(*svc));
		if (!svc)
			return -ENOMEM;
		svc->sup = s;
		svc->use_console = spec->use_console;
		supervisor_machine_init(&svc->fsm);
		if (!(svc->argv = strv_copy(spec->argv)))
			return -ENOMEM;
		r = loop_add_timer(s->loop, USEC_INFINITY, service_restart, svc, &svc->restart);
		if (r < 0)
			return r;
		r = loop_child_new(s->loop, &svc->watch);
		if (r < 0)
			return r;
	}

	r = spawn_job(spec->argv, envp, spec->use_console, &pid, ret_error);
	if (r != 0)
		return r;
	*ret_pid = pid;

	if (w) {
		loop_child_watch(w->watch, pid, waiter_on_exit, w);
		LIST_PREPEND(s->waiters, w);
		TAKE_PTR(w);
		return 0;
	}
	svc->envp = TAKE_PTR(envp);
	svc->pid = pid;
	loop_child_watch(svc->watch, pid, service_on_exit, svc);
	LIST_PREPEND(s->services, svc);
	s->n_services++;
	/* STARTING -> RUNNING, or FINISHING when respawning has stopped:
	 * neither asks for an action. */
	(void)supervisor_step(&svc->fsm, &s->params, SUPERVISOR_STARTED, now_usec());
	if (s->respawn_stopped)
		(void)supervisor_step(&svc->fsm, &s->params, SUPERVISOR_STOP, now_usec());
	TAKE_PTR(svc);
	return 0;
}

void supervisor_stop_respawning(struct supervisor *s)
{
	s->respawn_stopped = true;
	/* Services waiting for their restart timer go now (BACKOFF -> DONE);
	 * running ones when they exit (RUNNING -> FINISHING). */
	struct service *svc = s->services, *next;
	for (; svc; svc = next) {
		next = svc->next;
		service_input(svc, SUPERVISOR_STOP, 0, 0);
	}
}

unsigned supervisor_services(const struct supervisor *s)
{
	return s->n_services;
}
