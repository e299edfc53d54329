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
	int r;

	if (s->respawn_stopped) {
		service_free(svc);
		return;
	}
	r = spawn_job(svc->argv, svc->envp, svc->use_console, &svc->pid, &err);
	if (r != 0) {
		if (r < 0)
			err = (struct spawn_error){ .stage = SPAWN_STAGE_NONE, .error = -r };
		s->on_event(SUPERVISOR_RESTART_FAILED, svc->argv[0], 0, 0, &err, s->userdata);
		service_free(svc);
		return;
	}
	service_note_start(svc, now_usec());
	if (loop_watch_child(s->loop, svc->pid, service_on_exit, svc, NULL) < 0) {
		service_free(svc);
		return;
	}
	s->on_event(SUPERVISOR_RESTARTED, svc->argv[0], svc->pid, 0, NULL, s->userdata);
}

static void service_on_exit(pid_t pid, int status, void *userdata)
{
	struct service *svc = userdata;
	struct supervisor *s = svc->sup;
	uint64_t now = now_usec(), delay;

	svc->pid = 0;
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
	if (!svc->restart) {
		if (loop_add_timer(s->loop, now + delay, service_restart, svc, &svc->restart) < 0)
			service_free(svc);
	} else
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

int supervisor_launch(struct supervisor *s, const struct job_spec *spec, supervisor_exit_fn on_exit, void *userdata,
		      pid_t *ret_pid, struct spawn_error *ret_error)
{
	char **envp = env_build(spec->env);
	pid_t pid;
	int r;

	if (!envp)
		return -ENOMEM;
	r = spawn_job(spec->argv, envp, spec->use_console, &pid, ret_error);
	if (r != 0) {
		strv_free(envp);
		return r;
	}
	*ret_pid = pid;

	if (!spec->respawn) {
		strv_free(envp);
		struct waiter *w = calloc(1, sizeof(*w));
		if (!w)
			return 0; /* the orphan handler reaps it */
		*w = (struct waiter){ .sup = s, .fn = on_exit, .userdata = userdata };
		snprintf(w->name, sizeof(w->name), "%s", spec->argv[0]);
		if (loop_watch_child(s->loop, pid, waiter_on_exit, w, &w->watch) < 0) {
			free(w);
			return 0;
		}
		LIST_PREPEND(s->waiters, w);
		return 0;
	}

	struct service *svc = calloc(1, sizeof(*svc));
	if (!svc || !(svc->argv = strv_copy(spec->argv))) {
		free(svc);
		strv_free(envp);
		return 0; /* launched, but it will not be respawned */
	}
	svc->sup = s;
	svc->envp = envp;
	svc->use_console = spec->use_console;
	svc->pid = pid;
	service_note_start(svc, now_usec());
	LIST_PREPEND(s->services, svc);
	s->n_services++;
	if (loop_watch_child(s->loop, pid, service_on_exit, svc, NULL) < 0)
		service_free(svc);
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
