/* The vm_tools.Maitred method table, Shutdown, and the binding of maitred's
 * lifecycle (lifecycle.h): maitred_input() and the actions it carries out. */
#include <errno.h>
#include <signal.h>

#include "base/log.h"
#include "base/time-util.h"
#include "common.pb-c.h"
#include "guest.pb-c.h"
#include "maitred.h"

static const struct rpc_method methods[] = {
	{ "/vm_tools.Maitred/ConfigureNetwork", &vm_tools__network_config_request__descriptor,
	  maitred_configure_network },
	{ "/vm_tools.Maitred/Shutdown", &vm_tools__empty_message__descriptor, maitred_shutdown },
	{ "/vm_tools.Maitred/LaunchProcess", &vm_tools__launch_process_request__descriptor, maitred_launch_process },
	{ "/vm_tools.Maitred/Mount", &vm_tools__mount_request__descriptor, maitred_mount },
	/* Added upstream after 2017. */
	{ "/vm_tools.Maitred/SetTime", &vm_tools__set_time_request__descriptor, maitred_set_time },
	{ "/vm_tools.Maitred/SetTimezone", &vm_tools__set_timezone_request__descriptor, maitred_set_timezone },
	{ "/vm_tools.Maitred/SetResolvConfig", &vm_tools__set_resolv_config_request__descriptor,
	  maitred_set_resolv_config },
	{ "/vm_tools.Maitred/GetKernelVersion", &vm_tools__empty_message__descriptor, maitred_get_kernel_version },
	{ "/vm_tools.Maitred/GetAvailableSpace", &vm_tools__empty_message__descriptor, maitred_get_available_space },
	{ "/vm_tools.Maitred/ResizeFilesystem", &vm_tools__resize_filesystem_request__descriptor,
	  maitred_resize_filesystem },
	{ "/vm_tools.Maitred/GetResizeStatus", &vm_tools__empty_message__descriptor, maitred_get_resize_status },
	{ "/vm_tools.Maitred/GetResizeBounds", &vm_tools__empty_message__descriptor, maitred_get_resize_bounds },
	{ "/vm_tools.Maitred/PrepareToSuspend", &vm_tools__empty_message__descriptor, maitred_prepare_to_suspend },
	{ "/vm_tools.Maitred/OnHostNetworkChanged", &vm_tools__empty_message__descriptor,
	  maitred_on_host_network_changed },
	{ "/vm_tools.Maitred/ResetIPv6", &vm_tools__empty_message__descriptor, maitred_on_host_network_changed },
	/* ChromeOS's container stack: refused with a clear message. Requests
	 * decode as EmptyMessage (any valid protobuf does). */
	{ "/vm_tools.Maitred/StartTermina", &vm_tools__empty_message__descriptor, maitred_refuse_container_method },
	{ "/vm_tools.Maitred/ConfigureContainerGuest", &vm_tools__empty_message__descriptor,
	  maitred_refuse_container_method },
	{ "/vm_tools.Maitred/Mount9P", &vm_tools__mount9_prequest__descriptor, maitred_refuse_container_method },
	{ "/vm_tools.Maitred/UpdateStorageBalloon", &vm_tools__empty_message__descriptor,
	  maitred_refuse_container_method },
};

const struct rpc_service maitred_service = {
	.methods = methods,
	.n_methods = ARRAY_SIZE(methods),
};

/* The lifecycle's actions (lifecycle.h). */

static void on_server_stopped(void *userdata)
{
	struct maitred *m = userdata;
	log_info("all connections closed, stopping");
	maitred_input(m, MAITRED_SERVER_STOPPED, NULL);
}

static void boot_jobs_done(struct maitred *m)
{
	maitred_input(m, MAITRED_BOOT_JOBS_DONE, NULL);
}

static void log_serving(const struct maitred *m)
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
static void serve(struct maitred *m)
{
	for (unsigned i = 0; i < m->opts.n_listen; i++) {
		struct addr a;
		(void)addr_parse(m->opts.listen[i], &a);
		int r = rpc_server_listen(m->server, &a);
		if (r < 0) {
			log_error_errno(r, "could not listen on %s", m->opts.listen[i]);
			maitred_input(m, MAITRED_LISTEN_FAILED, NULL);
			return;
		}
		log_info("Server listening on %s", m->opts.listen[i]);
	}
	int r = notify_send(&m->notify, "READY=1\nSTATUS=Serving");
	if (r < 0)
		log_warning_errno(r, "could not tell the service manager that maitred is ready");
	log_serving(m);
	maitred_notify_ready(m);
}

/* MAITRED_DO_STOP: not PID 1. */
static void stop(struct maitred *m)
{
	(void)notify_send(&m->notify, "STOPPING=1");
	maitred_vm_ready_free(m);
	supervisor_stop_respawning(m->supervisor);
	rpc_server_stop(m->server, on_server_stopped, m);
}

void maitred_input(struct maitred *m, enum maitred_input in, struct rpc_call *call)
{
	enum maitred_state was = m->state;
	unsigned act = maitred_lifecycle_step(&m->state, in);

	if (m->state != was)
		log_debug("lifecycle: %s -> %s", maitred_state_name(was), maitred_state_name(m->state));
	if (act & MAITRED_DO_RUN_BOOT_JOBS)
		maitred_run_boot_jobs(m, m->opts.jobs_dir, boot_jobs_done);
	if (act & MAITRED_DO_SERVE)
		serve(m);
	if (act & MAITRED_DO_STOP)
		stop(m);
	if (act & MAITRED_DO_POWER_OFF)
		maitred_power_off_start(m, call);
	if ((act & MAITRED_DO_REFUSE_SHUTDOWN) && call)
		rpc_call_fail(call, RPC_UNAVAILABLE, "already shutting down");
	if (act & MAITRED_DO_EXIT)
		loop_exit(m->loop, 0);
	if (act & MAITRED_DO_EXIT_FAILED)
		loop_exit(m->loop, 1);
}

void maitred_shutdown(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	struct maitred *m = userdata;
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
