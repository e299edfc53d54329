/* maitred: the guest agent. Serves vm_tools.Maitred until Shutdown or
 * SIGTERM.
 *
 * As PID 1 (the VM's init) it sets the system up first (init/sysinit.c),
 * logs to /dev/kmsg, and never returns: every way out of run(), an orderly
 * power-off or an unrecoverable error, ends in sync + reboot(RB_POWER_OFF),
 * because PID 1 exiting would panic the kernel. When it is not PID 1 it
 * makes itself a child subreaper so that everything it launches is reaped
 * by it, and exits at the end. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "base/escape.h"
#include "base/log.h"
#include "base/wait-status.h"
#include "base/time-util.h"
#include "init/cmdline.h"
#include "init/power-off.h"
#include "init/sysinit.h"
#include "files-service/service.h"
#include "process-service/service.h"
#include "snapshot-service/service.h"
#include "tunnel-service/service.h"
#include "vmtools/vmtools.h"
#include "grpc-std/grpc-std.h"
#include "agent/agent.h"

/* A flood of refused peers or calls must not fill the log (the kernel log
 * as PID 1): per kind, at most RATELIMIT_BURST lines per interval, then one
 * line with the number left out, written with the next line that passes. */
#define RATELIMIT_INTERVAL_USEC (5 * USEC_PER_SEC)
#define RATELIMIT_BURST 20

struct ratelimit {
	uint64_t begin;
	unsigned n, suppressed;
};

static bool ratelimit_pass(struct ratelimit *rl, const char *what)
{
	uint64_t now = now_usec();

	if (rl->begin == 0 || now - rl->begin >= RATELIMIT_INTERVAL_USEC) {
		if (rl->suppressed)
			log_warning("%u more %s not logged (rate limit)", rl->suppressed, what);
		*rl = (struct ratelimit){ .begin = now };
	}
	if (rl->n < RATELIMIT_BURST) {
		rl->n++;
		return true;
	}
	rl->suppressed++;
	return false;
}

static struct ratelimit conn_ratelimit, reject_ratelimit;

static void on_server_event(enum rpc_server_event ev, const char *peer, int error, const char *detail,
			    void *userdata)
{
	if (!ratelimit_pass(&conn_ratelimit, "refused or dropped connections"))
		return;
	switch (ev) {
	case RPC_SERVER_PEER_REFUSED:
		log_warning("refused connection from %s: not allowed by the peer policy", peer);
		break;
	case RPC_SERVER_PEER_OVER_LIMIT: log_warning("refused connection from %s: too many connections", peer); break;
	case RPC_SERVER_PEER_PROTOCOL_ERROR:
		if (detail)
			log_warning("dropped connection from %s: HTTP/2 protocol error: %s", peer, ESCAPED(detail));
		else
			log_warning("dropped connection from %s: HTTP/2 protocol error", peer);
		break;
	case RPC_SERVER_ACCEPT_FAILED: log_warning_errno(error, "accept failed"); break;
	case RPC_SERVER_PEER_SILENT: log_warning("dropped connection from %s: no HTTP/2 preface in time", peer); break;
	case RPC_SERVER_PEER_FAILED: log_warning_errno(error, "dropped connection from %s", peer); break;
	case RPC_SERVER_PEER_EVICTED:
		log_info("closed the longest-idle connection, from %s, to make room for a new one", peer);
		break;
	}
}

/* Calls that never reached a handler: the handlers log the others. */
static void on_call_rejected(const char *peer, const char *path, int code, const char *message, void *userdata)
{
	if (ratelimit_pass(&reject_ratelimit, "rejected calls"))
		log_warning("%s from %s: rejected: %s: %s", *path ? ESCAPED(path) : "(no path)", peer,
			    rpc_code_name(code), ESCAPED(message));
}

static void on_supervisor_event(enum supervisor_event ev, const char *name, pid_t pid, int status,
				const struct spawn_error *err, void *userdata)
{
	switch (ev) {
	case SUPERVISOR_EXITED:
		log_info("%s (%d) %s", ESCAPED(name), (int)pid,
			 wait_status_str(status, (char[WAIT_STATUS_STR_MAX]){ 0 }));
		break;
	case SUPERVISOR_RESTARTED: log_info("Restarting %s (now pid %d)", ESCAPED(name), (int)pid); break;
	case SUPERVISOR_THROTTLED: log_warning("%s respawning too frequently; stopped", ESCAPED(name)); break;
	case SUPERVISOR_RESTART_FAILED:
		log_warning("%s could not be restarted (%s): %s; stopped", ESCAPED(name), spawn_stage_name(err->stage),
			    strerror(err->error));
		break;
	}
}

static void on_orphan(struct loop *l, pid_t pid, int status, void *userdata)
{
	log_debug("reaped orphan %d (status 0x%x)", (int)pid, (unsigned)status);
}

static void on_stop_signal(struct loop *l, int signo, void *userdata)
{
	struct agent *m = userdata;

	if (m->pid1) {
		log_info("received SIG%s, powering off", sigabbrev_np(signo));
		maitred_input(m, MAITRED_POWER_OFF, NULL);
		return;
	}
	log_info("received %s, stopping", strsignal(signo));
	maitred_input(m, MAITRED_STOP, NULL);
}

static void on_ignored_signal(struct loop *l, int signo, void *userdata)
{
	log_info("received SIG%s; ignored", sigabbrev_np(signo));
}

static void report_sysinit(const char *step, int error, void *userdata)
{
	log_error_errno(error, "init: could not %s", step);
}

/* Started by systemd as a service of the system it runs: systemd is PID 1
 * (its runtime directory exists, as sd_booted(3) checks) and our parent.
 * Only then is Shutdown turned into a power-off of the whole system; a
 * maitred started by hand or by a test on a systemd machine just exits. */
static bool running_as_systemd_service(void)
{
	struct stat st;
	return getppid() == 1 && stat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

/* PID 1 only: the system setup, then what the kernel command line says. */
static void setup_as_init(struct agent *m)
{
	struct kernel_cmdline kc;

	log_info("maitred running as PID 1");
	int r = kernel_cmdline_read("/proc/cmdline", &kc);
	if (r < 0)
		log_warning_errno(r, "init: could not read /proc/cmdline");
	sysinit_rest(kc.printk_devkmsg, report_sysinit, m);
	/* Ctrl-Alt-Del then sends us SIGINT instead of rebooting at once. */
	if (reboot(RB_DISABLE_CAD) < 0)
		log_warning_errno(errno, "init: could not disable Ctrl-Alt-Del");

	if (kc.no_startup_processes) {
		log_info("maitred.no_startup_processes: skipping the boot jobs");
		m->core.opts.no_startup_processes = true;
	}
	if (kc.shutdown_grace_usec)
		m->core.opts.shutdown_grace_usec = kc.shutdown_grace_usec;
	if (!m->core.opts.vm_ready_given) {
		int port = kc.vm_ready_port ? kc.vm_ready_port : 7777;
		snprintf(m->vm_ready_default, sizeof(m->vm_ready_default), "vsock:2:%d", port);
		m->core.opts.vm_ready = m->vm_ready_default;
		log_info("Using startup listener port: %d", port);
	}
}

static int setup_failed(int error, const char *what)
{
	log_error_errno(error, "could not %s", what);
	return 1;
}

/* SIGTERM and SIGINT stop (or power off); as PID 1 SIGPWR too, and the
 * signals whose default would kill PID 1 are logged and ignored. */
static int route_signals(struct agent *m)
{
	static const int ignored[] = { SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
	int r = loop_add_signal(m->core.loop, SIGTERM, on_stop_signal, m);

	if (r >= 0)
		r = loop_add_signal(m->core.loop, SIGINT, on_stop_signal, m);
	if (r >= 0 && m->pid1) {
		r = loop_add_signal(m->core.loop, SIGPWR, on_stop_signal, m);
		for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(ignored); i++)
			r = loop_add_signal(m->core.loop, ignored[i], on_ignored_signal, m);
	}
	return r;
}

/* The config file, then --disable: a name that matches nothing, or a bad
 * line, stops maitred before it serves (a typo must not leave a method
 * served). */
static int apply_switches(struct agent *m)
{
	const struct maitred_options *o = &m->core.opts;
	const char *path = o->config ? o->config : MAITRED_CONFIG_DEFAULT;
	struct maitred_config_error err;
	int r = maitred_config_load(m, path, &err);

	if (r == -ENOENT && err.line == 0 && !o->config)
		r = 0;
	if (r < 0) {
		if (err.line)
			log_error("%s:%u: %s", path, err.line, err.message);
		else
			log_error("could not read the config file %s: %s", path, err.message);
		return r;
	}
	for (unsigned i = 0; i < o->n_disable; i++) {
		r = maitred_disable(m, o->disable[i]);
		if (r == -ENOENT)
			log_error("--disable '%s': no service or method of that name is served", o->disable[i]);
		else if (r < 0)
			log_error_errno(r, "--disable '%s'", o->disable[i]);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < m->n_switch_names; i++)
		log_info("%s is disabled on this guest", m->switch_names[i]);
	return 0;
}

/* The services registered so far; they must outlive the server. */
static int new_server(struct agent *m, struct rpc_server **ret)
{
	struct rpc_server_config cfg;

	rpc_server_config_init(&cfg, m->services);
	cfg.policy = m->core.opts.policy;
	cfg.max_connections = m->core.opts.max_connections;
	cfg.handshake_timeout_usec = m->core.opts.handshake_timeout_usec;
	cfg.on_event = on_server_event;
	cfg.on_reject = on_call_rejected;
	cfg.userdata = m;
	return rpc_server_new(m->core.loop, &cfg, ret);
}

static int run(int argc, char **argv)
{
	struct agent m = { 0 };
	struct vmtools vmtools;
	struct files_service files;
	struct process_service processes;
	struct snapshot_service snapshot;
	struct tunnel_service tunnel;
	struct grpcstd grpcstd;
	_cleanup_(loop_freep) struct loop *loop = NULL;
	_cleanup_(rpc_server_freep) struct rpc_server *server = NULL;
	_cleanup_(supervisor_freep) struct supervisor *sup = NULL;
	int r;

	m.started_usec = now_usec();
	cpu_usec(&m.started_user_usec, &m.started_sys_usec);
	m.pid1 = getpid() == 1;
	log_setup("maitred", LOG_SINK_STDERR);
	if (m.pid1)
		/* /dev, /proc and the standard descriptors first: logging and
		 * the re-exec below need them. */
		sysinit_early(report_sysinit, &m);
	maitred_tune_malloc(argv);
	if (m.pid1)
		(void)log_open_kmsg();

	r = maitred_parse_options(argc, argv, &m.core.opts);
	if (r != 0)
		return r > 0 ? 0 : 2;
	r = notify_init(&m.notify);
	if (r < 0)
		log_warning_errno(r, "ignoring an unusable $NOTIFY_SOCKET");
	m.systemd_service = !m.pid1 && running_as_systemd_service();

	if (m.pid1)
		setup_as_init(&m);
	else if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warning_errno(errno, "could not become a child subreaper; orphans are reaped by init");
	/* A write to a vanished peer must fail with EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);

	r = loop_new(&loop);
	if (r < 0)
		return setup_failed(r, "create the event loop");
	m.core.loop = loop;
	loop_set_orphan_handler(loop, on_orphan, &m);
	r = route_signals(&m);
	/* Without its signals maitred could not be stopped cleanly. */
	if (r < 0)
		return setup_failed(r, "route signals through the event loop");

	r = supervisor_new(loop, on_supervisor_event, &m, &sup);
	if (r < 0)
		return setup_failed(r, "create the supervisor");
	supervisor_set_params(sup, &m.core.opts.respawn);
	m.core.supervisor = sup;

	/* The services, each a layer of its own: one call each. */
	r = vmtools_register(&m, &vmtools);
	if (r < 0)
		return setup_failed(r, "register vm_tools.Maitred");
	r = files_service_register(&m, &files);
	if (r < 0)
		return setup_failed(r, "register valet.v1.Files");
	r = process_service_register(&m, &processes);
	if (r < 0)
		return setup_failed(r, "register valet.v1.Process");
	r = snapshot_service_register(&m, &snapshot);
	if (r < 0)
		return setup_failed(r, "register valet.v1.Snapshot");
	r = tunnel_service_register(&m, &tunnel);
	if (r < 0)
		return setup_failed(r, "register valet.v1.Tunnel");
	r = grpcstd_register(&m, &grpcstd);
	if (r < 0)
		return setup_failed(r, "register grpc.health.v1 and grpc.reflection");
	r = apply_switches(&m);
	if (r < 0) {
		maitred_agent_free(&m);
		return 2;
	}
	r = new_server(&m, &server);
	if (r < 0)
		return setup_failed(r, "create the server");
	m.server = server;

	/* BOOTING -> BOOT_JOBS -> SERVING, or BOOTING -> SERVING. */
	maitred_input(&m, m.core.opts.no_startup_processes ? MAITRED_BOOT_JOBS_DONE : MAITRED_RUN_BOOT_JOBS, NULL);
	if (m.core.state == MAITRED_FAILED)
		return 1;

	r = loop_run(loop);
	/* The supervisor (freed after this) holds the waits' exit watches. */
	vmtools_free(&vmtools);
	files_service_free(&files);
	process_service_free(&processes);
	snapshot_service_free(&snapshot);
	tunnel_service_free(&tunnel);
	grpcstd_free(&grpcstd);
	maitred_agent_free(&m);
	if (r < 0) {
		log_error_errno(r, "event loop failed");
		return 1;
	}
	return m.core.state == MAITRED_FAILED ? 1 : 0;
}

/* The only way PID 1 ends: never by returning into a kernel panic. */
_noreturn_ static void power_off_now(int code)
{
	if (code != 0)
		log_error("unrecoverable error (code %d); powering off", code);
	log_info("Shutting down system NOW");
	/* The host has its answer by now. A NIC still busy while the kernel
	 * shuts devices down has been seen to hang the guest in virtio_net. */
	if (power_off_links_down() != 0)
		log_warning("could not take every network interface down");
	sync();
	(void)reboot(RB_POWER_OFF);
	log_error_errno(errno, "reboot(RB_POWER_OFF) failed; halting");
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	int r = run(argc, argv);
	if (getpid() == 1)
		power_off_now(r);
	return r;
}
