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
	uint64_t starts[SUPERVISOR_RESPAWN_MAX]; /* ring of start times */
	unsigned n_starts, next_start;
	uint64_t started_at;
	unsigned short_runs;
	pid_t pid;
	struct loop_child *watch; /* while it runs */
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
	char **e = calloc(n + m + 1, sizeof(char *));
	if (!e)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!env_overridden(environ[i], over) && !(e[k++] = strdup(environ[i])))
			goto fail;
	for (size_t i = 0; i < m; i++)
		if (!(e[k++] = strdup(over[i])))
			goto fail;
	return e;
fail:
	strv_free(e);
	return NULL;
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
	*ret = s;
	return 0;
}

static void waiter_unlink(struct waiter *w);

static void service_free(struct service *svc)
{
	struct supervisor *s = svc->sup;
	LIST_REMOVE(s->services, svc);
	s->n_services--;
	loop_child_free(svc->watch);
	loop_timer_free(svc->restart);
	strv_free(svc->argv);
	strv_free(svc->envp);
	free(svc);
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
		loop_child_free(w->watch);
		free(w);
	}
	free(s);
}

static void service_on_exit(pid_t pid, int status, void *userdata);

static void service_note_start(struct service *svc, uint64_t now)
{
	svc->starts[svc->next_start] = now;
	svc->next_start = (svc->next_start + 1) % SUPERVISOR_RESPAWN_MAX;
	if (svc->n_starts < SUPERVISOR_RESPAWN_MAX)
		svc->n_starts++;
	svc->started_at = now;
}

/* Starts within the window, counting the one about to happen. */
static unsigned service_recent_starts(const struct service *svc, uint64_t now)
{
	unsigned n = 0;
	for (unsigned i = 0; i < svc->n_starts; i++)
		if (now - svc->starts[i] < SUPERVISOR_RESPAWN_WINDOW_USEC)
			n++;
	return n;
}

static void service_restart(struct loop_timer *t _unused_, void *userdata)
{
	struct service *svc = userdata;
	struct supervisor *s = svc->sup;
	struct spawn_error err = { 0 };
	struct loop_child *watch = NULL;
	int r;

	if (s->respawn_stopped) {
		service_free(svc);
		return;
	}
	/* The watch first: once the process exists, nothing may fail. */
	r = loop_child_new(s->loop, &watch);
	if (r == 0)
		r = spawn_job(svc->argv, svc->envp, svc->use_console, &svc->pid, &err);
	if (r != 0) {
		if (r < 0)
			err = (struct spawn_error){ .stage = SPAWN_STAGE_NONE, .error = -r };
		loop_child_free(watch);
		svc->pid = 0;
		s->on_event(SUPERVISOR_RESTART_FAILED, svc->argv[0], 0, 0, &err, s->userdata);
		service_free(svc);
		return;
	}
	service_note_start(svc, now_usec());
	loop_child_watch(watch, svc->pid, service_on_exit, svc);
	svc->watch = watch;
	s->on_event(SUPERVISOR_RESTARTED, svc->argv[0], svc->pid, 0, NULL, s->userdata);
}

static void service_on_exit(pid_t pid, int status, void *userdata)
{
	struct service *svc = userdata;
	struct supervisor *s = svc->sup;
	uint64_t now = now_usec(), delay;

	svc->pid = 0;
	svc->watch = NULL; /* freed by the loop before this call */
	s->on_event(SUPERVISOR_EXITED, svc->argv[0], pid, status, NULL, s->userdata);
	if (s->respawn_stopped) {
		service_free(svc);
		return;
	}
	if (service_recent_starts(svc, now) >= SUPERVISOR_RESPAWN_MAX) {
		s->on_event(SUPERVISOR_THROTTLED, svc->argv[0], pid, status, NULL, s->userdata);
		service_free(svc);
		return;
	}
	if (now - svc->started_at >= SUPERVISOR_HEALTHY_RUN_USEC) {
		svc->short_runs = 0;
		delay = 0;
	} else {
		unsigned shift = MIN(svc->short_runs, 10u);
		delay = MIN(SUPERVISOR_BACKOFF_MIN_USEC << shift, SUPERVISOR_BACKOFF_MAX_USEC);
		svc->short_runs++;
	}
	/* Allocated at launch, so a restart cannot fail to be scheduled. */
	loop_timer_set(svc->restart, now + delay);
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
	free(w);
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

static void service_free_unlinked(struct service *svc)
{
	if (svc) {
		loop_timer_free(svc->restart);
		strv_free(svc->argv);
		strv_free(svc->envp);
		free(svc);
	}
}
DEFINE_FREEP(struct service, service_free_unlinked)

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
	struct loop_child *watch = NULL;
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
		if (!(svc->argv = strv_copy(spec->argv)))
			return -ENOMEM;
		r = loop_add_timer(s->loop, USEC_INFINITY, service_restart, svc, &svc->restart);
		if (r < 0)
			return r;
		r = loop_child_new(s->loop, &watch);
		if (r < 0)
			return r;
	}

	r = spawn_job(spec->argv, envp, spec->use_console, &pid, ret_error);
	if (r != 0) {
		loop_child_free(watch);
		return r;
	}
	*ret_pid = pid;

	if (w) {
		loop_child_watch(w->watch, pid, waiter_on_exit, w);
		LIST_PREPEND(s->waiters, w);
		TAKE_PTR(w);
		return 0;
	}
	svc->envp = TAKE_PTR(envp);
	svc->pid = pid;
	service_note_start(svc, now_usec());
	loop_child_watch(watch, pid, service_on_exit, svc);
	svc->watch = watch;
	LIST_PREPEND(s->services, svc);
	s->n_services++;
	TAKE_PTR(svc);
	return 0;
}

void supervisor_stop_respawning(struct supervisor *s)
{
	s->respawn_stopped = true;
	/* Services waiting for their restart timer go now; running ones go
	 * when they exit. */
	struct service *svc = s->services, *next;
	for (; svc; svc = next) {
		next = svc->next;
		if (svc->pid == 0)
			service_free(svc);
	}
}

unsigned supervisor_services(const struct supervisor *s)
{
	return s->n_services;
}
