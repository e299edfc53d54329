/* The agent's binding of maitred's lifecycle (lifecycle.h): the registry of
 * the services the server serves, maitred_input() and the actions it
 * carries out, and Shutdown (the host asking for the end). */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "agent.h"
#include "base/log.h"
#include "base/time-util.h"
#include "common.pb-c.h"

/* The registry: the method tables, linked in the order they came. */

static bool path_registered(const struct rpc_service *list, const char *path)
{
	for (; list; list = list->next)
		for (size_t i = 0; i < list->n_methods; i++)
			if (strcmp(list->methods[i].path, path) == 0)
				return true;
	return false;
}

int maitred_add_service(struct agent *a, struct rpc_service *svc)
{
	for (size_t i = 0; i < svc->n_methods; i++)
		if (path_registered(a->services, svc->methods[i].path))
			return -EEXIST;
	svc->next = NULL;
	if (a->services_last)
		a->services_last->next = svc;
	else
		a->services = svc;
	a->services_last = svc;
	return 0;
}

void maitred_add_stop_hook(struct agent *a, struct maitred_stop_hook *h)
{
	h->next = a->stop_hooks;
	a->stop_hooks = h;
}

/* The lifecycle's actions (lifecycle.h). */

/* Once: the list is taken before the first hook runs. */
static void run_stop_hooks(struct agent *m)
{
	struct maitred_stop_hook *h = TAKE_PTR(m->stop_hooks);

	while (h) {
		struct maitred_stop_hook *next = h->next;
		h->fn(h->userdata);
		h = next;
	}
}

static void on_server_stopped(void *userdata)
{
	struct agent *m = userdata;
	log_info("all connections closed, stopping");
	maitred_input(m, MAITRED_SERVER_STOPPED, NULL);
}

static void boot_jobs_done(void *userdata)
{
	maitred_input(userdata, MAITRED_BOOT_JOBS_DONE, NULL);
}

/* The power-off sequence reports its end here, as an input of the
 * lifecycle: it knows nothing of the lifecycle itself. */
static void power_off_done(void *userdata)
{
	maitred_input(userdata, MAITRED_POWER_OFF_DONE, NULL);
}

static void log_serving(const struct agent *m)
{
	uint64_t user, sys;
	cpu_usec(&user, &sys);
	user -= m->started_user_usec;
	sys -= m->started_sys_usec;
	log_info("Serving %.1f ms after start (%.1f ms of CPU: %.1f in maitred, %.1f in the kernel)",
		 (double)(now_usec() - m->started_usec) / 1000, (double)(user + sys) / 1000, (double)user / 1000,
		 (double)sys / 1000);
}

/* MAITRED_DO_SERVE: after the boot jobs. */
static void serve(struct agent *m)
{
	for (unsigned i = 0; i < m->core.opts.n_listen; i++) {
		struct addr a;
		(void)addr_parse(m->core.opts.listen[i], &a);
		int r = rpc_server_listen(m->server, &a);
		if (r < 0) {
			log_error_errno(r, "could not listen on %s", m->core.opts.listen[i]);
			maitred_input(m, MAITRED_LISTEN_FAILED, NULL);
			return;
		}
		log_info("Server listening on %s", m->core.opts.listen[i]);
	}
	int r = notify_send(&m->notify, "READY=1\nSTATUS=Serving");
	if (r < 0)
		log_warning_errno(r, "could not tell the service manager that maitred is ready");
	log_serving(m);
	maitred_notify_ready(&m->core, &m->vm_ready);
}

/* MAITRED_DO_STOP: not PID 1. */
static void stop(struct agent *m)
{
	(void)notify_send(&m->notify, "STOPPING=1");
	maitred_vm_ready_free(&m->vm_ready);
	supervisor_stop_respawning(m->core.supervisor);
	run_stop_hooks(m);
	rpc_server_stop(m->server, on_server_stopped, m);
}

/* MAITRED_DO_POWER_OFF: PID 1. */
static void power_off(struct agent *m, struct rpc_call *call)
{
	run_stop_hooks(m);
	if (maitred_power_off_start(&m->core, m->server, call, power_off_done, m, &m->power_off) < 0) {
		/* No memory for an orderly power-off: do the short one. */
		log_error("Power-off: out of memory; powering off without waiting");
		if (call)
			rpc_call_fail(call, RPC_INTERNAL, "out of memory");
		maitred_input(m, MAITRED_POWER_OFF_DONE, NULL);
	}
}

void maitred_input(struct agent *m, enum maitred_input in, struct rpc_call *call)
{
	enum maitred_state was = m->core.state;
	unsigned act = maitred_lifecycle_step(&m->core.state, in);

	if (m->core.state != was)
		log_debug("lifecycle: %s -> %s", maitred_state_name(was), maitred_state_name(m->core.state));
	if (act & MAITRED_DO_RUN_BOOT_JOBS)
		maitred_run_boot_jobs(&m->core, m->core.opts.jobs_dir, &m->boot_jobs, boot_jobs_done, m);
	if (act & MAITRED_DO_SERVE)
		serve(m);
	if (act & MAITRED_DO_STOP)
		stop(m);
	if (act & MAITRED_DO_POWER_OFF)
		power_off(m, call);
	if ((act & MAITRED_DO_REFUSE_SHUTDOWN) && call)
		rpc_call_fail(call, RPC_UNAVAILABLE, "already shutting down");
	if (act & MAITRED_DO_EXIT)
		loop_exit(m->core.loop, 0);
	if (act & MAITRED_DO_EXIT_FAILED)
		loop_exit(m->core.loop, 1);
}

void maitred_agent_free(struct agent *m)
{
	maitred_vm_ready_free(&m->vm_ready);
	maitred_boot_jobs_free(&m->boot_jobs);
	maitred_power_off_free(&m->power_off);
	maitred_switches_free(m);
}

void maitred_shutdown(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	struct agent *m = userdata;
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;

	if (m->pid1) {
		/* Answered at the end, once processes are gone and file systems
		 * unmounted: the host may then cut the VM's power. */
		log_info("Shutdown from %s: powering off", rpc_call_peer(call));
		return maitred_input(m, MAITRED_POWER_OFF, call);
	}
	if (m->systemd_service) {
		/* What the host means by Shutdown: the whole system goes down,
		 * in systemd's order (SIGRTMIN+4 is systemd's "poweroff"); it
		 * stops us like any service, after this answer is written. */
		log_info("Shutdown from %s: asking systemd to power the system off", rpc_call_peer(call));
		rpc_call_reply(call, &resp.base);
		if (kill(1, SIGRTMIN + 4) < 0) {
			log_error_errno(errno, "could not ask systemd to power off; stopping maitred");
			maitred_input(m, MAITRED_STOP, NULL);
		}
		return;
	}
	log_info("Shutdown from %s: OK, finishing calls in flight", rpc_call_peer(call));
	/* Answer first: the reply is queued before GOAWAY, and the stop waits
	 * for it to be written like for any other call in flight. */
	rpc_call_reply(call, &resp.base);
	maitred_input(m, MAITRED_STOP, NULL);
}
