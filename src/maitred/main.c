/* maitred: the guest agent. Serves vm_tools.Maitred until Shutdown or
 * SIGTERM. When it is not PID 1 it makes itself a child subreaper so that
 * everything it launches is reaped by it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/wait.h>

#include "base/log.h"
#include "maitred.h"

static void on_server_event(enum rpc_server_event ev, const char *peer, int error, void *userdata _unused_)
{
	switch (ev) {
	case RPC_SERVER_PEER_REFUSED:
		log_warning("refused connection from %s: not allowed by the peer policy", peer);
		break;
	case RPC_SERVER_PEER_OVER_LIMIT: log_warning("refused connection from %s: too many connections", peer); break;
	case RPC_SERVER_PEER_PROTOCOL_ERROR:
		log_warning("dropped connection from %s: HTTP/2 protocol error", peer);
		break;
	case RPC_SERVER_ACCEPT_FAILED: log_warning_errno(error, "accept failed"); break;
	case RPC_SERVER_PEER_SILENT:
		log_warning("dropped connection from %s: no HTTP/2 preface in time", peer);
		break;
	}
}

static void on_supervisor_event(enum supervisor_event ev, const char *name, pid_t pid, int status,
				const struct spawn_error *err, void *userdata _unused_)
{
	switch (ev) {
	case SUPERVISOR_EXITED:
		if (WIFSIGNALED(status))
			log_info("%s (%d) killed by signal %d", name, (int)pid, WTERMSIG(status));
		else
			log_info("%s (%d) exited with status %d", name, (int)pid, WEXITSTATUS(status));
		break;
	case SUPERVISOR_RESTARTED: log_info("Restarting %s (now pid %d)", name, (int)pid); break;
	case SUPERVISOR_THROTTLED: log_warning("%s respawning too frequently; stopped", name); break;
	case SUPERVISOR_RESTART_FAILED:
		log_warning("%s could not be restarted (%s): %s; stopped", name, spawn_stage_name(err->stage),
			    strerror(err->error));
		break;
	}
}

static void on_orphan(struct loop *l _unused_, pid_t pid, int status, void *userdata _unused_)
{
	log_debug("reaped orphan %d (status 0x%x)", (int)pid, (unsigned)status);
}

static void on_stop_signal(struct loop *l _unused_, int signo, void *userdata)
{
	struct maitred *m = userdata;
	log_info("received %s, stopping", strsignal(signo));
	maitred_begin_stop(m);
}

/* After the boot jobs: serve. */
static void start_serving(struct maitred *m)
{
	if (m->shutting_down)
		return;
	for (unsigned i = 0; i < m->opts.n_listen; i++) {
		struct addr a;
		(void)addr_parse(m->opts.listen[i], &a);
		int r = rpc_server_listen(m->server, &a);
		if (r < 0) {
			log_error_errno(r, "could not listen on %s", m->opts.listen[i]);
			m->listen_failed = true;
			loop_exit(m->loop, 1);
			return;
		}
		log_info("Server listening on %s", m->opts.listen[i]);
	}
}

static int run(int argc, char **argv)
{
	struct maitred m = { 0 };
	_cleanup_(loop_freep) struct loop *loop = NULL;
	_cleanup_(rpc_server_freep) struct rpc_server *server = NULL;
	_cleanup_(supervisor_freep) struct supervisor *sup = NULL;
	struct rpc_server_config cfg;
	int r;

	r = maitred_parse_options(argc, argv, &m.opts);
	if (r != 0)
		return r > 0 ? 0 : 2;

	m.pid1 = getpid() == 1;
	log_setup("maitred", LOG_SINK_STDERR);
	if (m.pid1)
		(void)log_open_kmsg();
	else if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warning_errno(errno, "could not become a child subreaper; orphans are reaped by init");
	/* A write to a vanished peer must fail with EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);

	r = loop_new(&loop);
	if (r < 0)
		return log_error_errno(r, "could not create the event loop"), 1;
	m.loop = loop;
	loop_set_orphan_handler(loop, on_orphan, &m);
	(void)loop_add_signal(loop, SIGTERM, on_stop_signal, &m);
	(void)loop_add_signal(loop, SIGINT, on_stop_signal, &m);

	r = supervisor_new(loop, on_supervisor_event, &m, &sup);
	if (r < 0)
		return log_error_errno(r, "could not create the supervisor"), 1;
	m.supervisor = sup;

	rpc_server_config_init(&cfg, &maitred_service);
	cfg.policy = m.opts.policy;
	cfg.max_connections = m.opts.max_connections;
	cfg.handshake_timeout_usec = m.opts.handshake_timeout_usec;
	cfg.on_event = on_server_event;
	cfg.userdata = &m;
	struct rpc_service svc = maitred_service;
	svc.userdata = &m;
	cfg.service = &svc;
	r = rpc_server_new(loop, &cfg, &server);
	if (r < 0)
		return log_error_errno(r, "could not create the server"), 1;
	m.server = server;

	if (m.opts.no_startup_processes)
		start_serving(&m);
	else
		(void)maitred_run_boot_jobs(&m, m.opts.jobs_dir, start_serving);
	if (m.listen_failed)
		return 1;

	r = loop_run(loop);
	maitred_boot_jobs_free(&m);
	if (r < 0)
		return log_error_errno(r, "event loop failed"), 1;
	if (m.listen_failed)
		return 1;
	if (m.pid1) {
		/* The full PID 1 power-off sequence lives with the init duties. */
		sync();
		(void)reboot(RB_POWER_OFF);
	}
	return 0;
}

int main(int argc, char **argv)
{
	return run(argc, argv);
}
