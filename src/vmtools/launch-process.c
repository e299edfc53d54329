/* LaunchProcess: validate, start through the supervisor, and answer now
 * (LAUNCHED, FAILED) or when the process ends (EXITED, SIGNALED). A waiting
 * call never blocks the loop: other calls, reaping and respawns go on. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "base/list.h"
#include "base/escape.h"
#include "base/log.h"
#include "base/wait-status.h"
#include "guest.pb-c.h"
#include "vmtools.h"

/* A call waiting for its process. It outlives the call if the client goes
 * away: the process is still reaped, the answer is dropped. Listed in
 * struct vmtools_launch so that those still waiting when maitred ends are
 * freed. */
struct launch_wait {
	struct launch_wait *prev, *next;
	struct vmtools_launch *m;
	struct rpc_call *call;
	char name[64];
	char peer[80];
};

static void launch_wait_free(struct launch_wait *w)
{
	LIST_REMOVE(w->m->waits, w);
	free(w);
}

void maitred_launch_waits_free(struct vmtools_launch *m)
{
	while (m->waits) {
		/* A call still open is cancelled later, with the server: it
		 * must not reach a wait that is gone by then. */
		if (m->waits->call)
			rpc_call_set_cancel(m->waits->call, NULL, NULL);
		launch_wait_free(m->waits);
	}
}

static void launch_wait_cancel(struct rpc_call *call, void *userdata)
{
	struct launch_wait *w = userdata;
	log_info("LaunchProcess from %s: %s: caller went away; the process keeps running", w->peer, ESCAPED(w->name));
	w->call = NULL;
}

static void launch_wait_exited(pid_t pid, int status, void *userdata)
{
	struct launch_wait *w = userdata;
	VmTools__LaunchProcessResponse resp = VM_TOOLS__LAUNCH_PROCESS_RESPONSE__INIT;

	if (WIFEXITED(status)) {
		resp.status = VM_TOOLS__PROCESS_STATUS__EXITED;
		resp.code = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		resp.status = VM_TOOLS__PROCESS_STATUS__SIGNALED;
		resp.code = WTERMSIG(status);
	} else
		resp.status = VM_TOOLS__PROCESS_STATUS__UNKNOWN;
	log_info("LaunchProcess from %s: %s (pid %d) %s", w->peer, ESCAPED(w->name), (int)pid,
		 wait_status_str(status, (char[WAIT_STATUS_STR_MAX]){ 0 }));
	if (w->call)
		rpc_call_reply(w->call, &resp.base);
	launch_wait_free(w);
}

static bool env_key_valid(const char *k)
{
	return k && *k && !strchr(k, '=');
}

void maitred_launch_process(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const VmTools__LaunchProcessRequest *req = (const VmTools__LaunchProcessRequest *)request;
	struct vmtools_launch *m = userdata;
	VmTools__LaunchProcessResponse resp = VM_TOOLS__LAUNCH_PROCESS_RESPONSE__INIT;
	struct spawn_error err = { 0 };
	const char *peer = rpc_call_peer(call);
	struct launch_wait *w = NULL;
	struct launch_job job;
	pid_t pid;
	int r;

	if (req->n_argv == 0) {
		log_info("LaunchProcess from %s: INVALID_ARGUMENT: missing argv", peer);
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "missing argv");
	}
	if (req->respawn && req->wait_for_exit) {
		log_info("LaunchProcess from %s: INVALID_ARGUMENT: respawn and wait_for_exit", peer);
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "respawn and wait_for_exit cannot both be true");
	}
	for (size_t i = 0; i < req->n_env; i++)
		if (!env_key_valid(req->env[i]->key)) {
			log_info("LaunchProcess from %s: INVALID_ARGUMENT: bad environment name", peer);
			return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "invalid environment variable name '%s'",
					     req->env[i]->key);
		}
	if (maitred_state_is_ending(m->core->state)) {
		log_info("LaunchProcess from %s: UNAVAILABLE: shutting down", peer);
		return rpc_call_fail(call, RPC_UNAVAILABLE, "shutting down");
	}

	if (launch_job_from_request(req, &job) < 0)
		return rpc_call_fail(call, RPC_INTERNAL, "failed to spawn process");
	if (req->wait_for_exit) {
		w = calloc(1, sizeof(*w));
		if (!w) {
			launch_job_clear(&job);
			return rpc_call_fail(call, RPC_INTERNAL, "failed to spawn process");
		}
		snprintf(w->name, sizeof(w->name), "%s", req->argv[0]);
		snprintf(w->peer, sizeof(w->peer), "%s", peer);
		w->m = m;
		LIST_PREPEND(m->waits, w);
	}

	r = supervisor_launch(m->core->supervisor, &job.spec, w ? launch_wait_exited : NULL, w, &pid, &err);
	launch_job_clear(&job);

	if (r < 0) {
		if (w)
			launch_wait_free(w);
		log_error_errno(r, "LaunchProcess from %s: %s: INTERNAL: failed to spawn process", peer,
				ESCAPED(req->argv[0]));
		return rpc_call_fail(call, RPC_INTERNAL, "failed to spawn process");
	}
	if (r == SPAWN_FAILED) {
		if (w)
			launch_wait_free(w);
		resp.status = VM_TOOLS__PROCESS_STATUS__FAILED;
		log_info("LaunchProcess from %s: %s: FAILED at %s: %s", peer, ESCAPED(req->argv[0]),
			 spawn_stage_name(err.stage), strerror(err.error));
		return rpc_call_reply(call, &resp.base);
	}
	if (w) {
		w->call = call;
		rpc_call_set_cancel(call, launch_wait_cancel, w);
		log_info("LaunchProcess from %s: %s (pid %d) started, waiting for it", peer, ESCAPED(req->argv[0]),
			 (int)pid);
		return;
	}
	resp.status = VM_TOOLS__PROCESS_STATUS__LAUNCHED;
	log_info("LaunchProcess from %s: %s (pid %d) LAUNCHED%s%s", peer, ESCAPED(req->argv[0]), (int)pid,
		 req->respawn ? ", respawning" : "", req->use_console ? ", on the console" : "");
	rpc_call_reply(call, &resp.base);
}
