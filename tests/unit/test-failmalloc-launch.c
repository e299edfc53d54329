/* Allocation-failure sweep over a LaunchProcess with wait_for_exit, from
 * the HTTP/2 request through maitred's handler and the supervisor to the
 * process's exit: for every N, the N-th allocation fails. Each run must end
 * with an answer (or a dropped connection), never wait for ever, leak
 * nothing, and the next call must be served. */
#include <sys/wait.h>

#include "base/log.h"
#include "base/time-util.h"
#include "failmalloc.h"
#include "guest.pb-c.h"
#include "h2-peer.h"
#include "vmtools/vmtools.h"
#include "test.h"

#define GUARD_USEC (20 * USEC_PER_SEC)

static struct maitred M;
static struct vmtools_launch L = { .core = &M };
static struct loop_timer *guard;
static bool hung;

static const struct rpc_method methods[] = {
	{ "/vm_tools.Maitred/LaunchProcess", &vm_tools__launch_process_request__descriptor, maitred_launch_process },
};
static const struct rpc_service service = { methods, 1, &L };

static uint8_t body[128], respawn_body[64];
static size_t body_len, respawn_body_len;

/* The answer came from the loop (the process's exit): stop running it. */
static void on_notify(void *ud)
{
	loop_exit(M.loop, 0);
}

static void on_guard(struct loop_timer *t, void *ud)
{
	hung = true;
	loop_exit(M.loop, 0);
}

static void on_event(enum supervisor_event ev, const char *name, pid_t pid, int status, const struct spawn_error *err,
		     void *ud)
{
}

static bool answered(struct h2_result *r)
{
	return r->closed && (r->grpc_status >= 0 || r->rst_code != 0);
}

static bool session_dead(struct rpc_server_session *s, int fed)
{
	const uint8_t *d;
	return fed < 0 || rpc_server_session_pull(s, &d) < 0 || !rpc_server_session_alive(s);
}

/* Sends the call and runs the loop until it is answered or the connection
 * is gone; returns the last feed result. */
static int one_call(struct rpc_server_session *s, struct h2_peer *p, int32_t *ret_id)
{
	*ret_id = h2_peer_request(p, "/vm_tools.Maitred/LaunchProcess", "application/grpc", body, body_len, NULL, true);
	int fed = h2_pump(p, s);
	if (!session_dead(s, fed) && !answered(h2_peer_result(p, *ret_id))) {
		loop_timer_set(guard, now_usec() + GUARD_USEC);
		(void)loop_run(M.loop);
		loop_timer_set(guard, USEC_INFINITY);
		fed = h2_pump(p, s);
	}
	return fed;
}

static bool exited_with_3(struct h2_result *r)
{
	VmTools__LaunchProcessResponse *resp;
	bool ok;

	if (r->grpc_status != 0 || r->data_len < 5)
		return false;
	resp = vm_tools__launch_process_response__unpack(NULL, r->data_len - 5, r->data + 5);
	ok = resp && resp->status == VM_TOOLS__PROCESS_STATUS__EXITED && resp->code == 3;
	vm_tools__launch_process_response__free_unpacked(resp, NULL);
	return ok;
}

static void scenario(unsigned long n, unsigned long *ret_count)
{
	struct rpc_server_session *s = NULL;
	struct h2_peer *p = h2_peer_new();
	int32_t id;
	int fed, r;

	M = (struct maitred){ 0 };
	hung = false;
	CHECK_EQ(loop_new(&M.loop), 0);
	CHECK_EQ(supervisor_new(M.loop, on_event, NULL, &M.supervisor), 0);
	CHECK_EQ(loop_add_timer(M.loop, USEC_INFINITY, on_guard, NULL, &guard), 0);

	failmalloc_arm(n);
	r = rpc_server_session_new(&service, NULL, on_notify, NULL, &s);
	if (r < 0) {
		*ret_count = failmalloc_disarm();
		CHECK_EQ(r, -ENOMEM);
		s = NULL;
	} else {
		fed = one_call(s, p, &id);
		*ret_count = failmalloc_disarm();
		CHECK(!hung);
		if (!session_dead(s, fed)) {
			CHECK(answered(h2_peer_result(p, id)));
			CHECK_EQ(rpc_server_session_pending_calls(s), 0);
			if (!failmalloc_injected())
				CHECK(exited_with_3(h2_peer_result(p, id)));
		} else
			rpc_server_session_free(TAKE_PTR(s));
	}
	if (!s) {
		h2_peer_free(p);
		p = h2_peer_new();
		CHECK_EQ(rpc_server_session_new(&service, NULL, on_notify, NULL, &s), 0);
	}
	fed = one_call(s, p, &id);
	CHECK(!hung);
	CHECK_EQ(fed, 0);
	CHECK(exited_with_3(h2_peer_result(p, id)));
	rpc_server_session_free(s);
	h2_peer_free(p);
	supervisor_free(M.supervisor);
	loop_timer_free(guard);
	loop_free(M.loop);
}

TEST(sweep_launch_process_wait_for_exit)
{
	VmTools__LaunchProcessRequest req = VM_TOOLS__LAUNCH_PROCESS_REQUEST__INIT;
	VmTools__LaunchProcessRequest__EnvEntry e = VM_TOOLS__LAUNCH_PROCESS_REQUEST__ENV_ENTRY__INIT;
	VmTools__LaunchProcessRequest__EnvEntry *env[] = { &e };
	char *argv[] = { "sh", "-c", "exit $CODE" };
	uint8_t msg[96];

	log_set_max_level(LOG_CRIT);
	e.key = "CODE";
	e.value = "3";
	req.argv = argv;
	req.n_argv = 3;
	req.env = env;
	req.n_env = 1;
	req.wait_for_exit = true;
	body_len = h2_grpc_frame(body, msg, vm_tools__launch_process_request__pack(&req, msg), false);

	unsigned long total = failmalloc_sweep(NULL, scenario, FAILMALLOC_EACH_INJECTED);
	CHECK(total > 50);
}

static int launch_status(struct h2_result *r)
{
	VmTools__LaunchProcessResponse *resp;
	int status = -1;

	if (r->grpc_status == 0 && r->data_len >= 5) {
		resp = vm_tools__launch_process_response__unpack(NULL, r->data_len - 5, r->data + 5);
		if (resp)
			status = resp->status;
		vm_tools__launch_process_response__free_unpacked(resp, NULL);
	}
	return status;
}

/* A respawning job is answered LAUNCHED only when it is supervised. */
static void respawn_scenario(unsigned long n, unsigned long *ret_count)
{
	struct rpc_server_session *s = NULL;
	struct h2_peer *p = h2_peer_new();

	M = (struct maitred){ 0 };
	CHECK_EQ(loop_new(&M.loop), 0);
	CHECK_EQ(supervisor_new(M.loop, on_event, NULL, &M.supervisor), 0);
	failmalloc_arm(n);
	if (rpc_server_session_new(&service, NULL, on_notify, NULL, &s) == 0) {
		int32_t id = h2_peer_request(p, "/vm_tools.Maitred/LaunchProcess", "application/grpc", respawn_body,
					     respawn_body_len, NULL, true);
		int fed = h2_pump(p, s);
		*ret_count = failmalloc_disarm();
		struct h2_result *r = h2_peer_result(p, id);
		CHECK(session_dead(s, fed) || answered(r));
		/* (Supervised but not LAUNCHED is right when the answer itself
		 * could not be sent: the client then gets INTERNAL.) */
		if (launch_status(r) == VM_TOOLS__PROCESS_STATUS__LAUNCHED)
			CHECK_EQ(supervisor_services(M.supervisor), 1);
		if (!failmalloc_injected())
			CHECK_EQ(launch_status(r), VM_TOOLS__PROCESS_STATUS__LAUNCHED);
		rpc_server_session_free(s);
	} else
		*ret_count = failmalloc_disarm();
	h2_peer_free(p);
	supervisor_free(M.supervisor);
	loop_free(M.loop);
}

TEST(sweep_launch_process_respawn)
{
	VmTools__LaunchProcessRequest req = VM_TOOLS__LAUNCH_PROCESS_REQUEST__INIT;
	char *argv[] = { "true" };
	uint8_t msg[32];

	log_set_max_level(LOG_CRIT);
	req.argv = argv;
	req.n_argv = 1;
	req.respawn = true;
	respawn_body_len = h2_grpc_frame(respawn_body, msg, vm_tools__launch_process_request__pack(&req, msg), false);
	/* The session, the stream, the request and the supervised job: 88
	 * today. A sweep over an armed region that stopped allocating would
	 * test nothing. */
	unsigned long total = failmalloc_sweep(NULL, respawn_scenario, 0);
	CHECK(total > 50);
	/* The respawned processes exit by themselves; reap them. */
	while (waitpid(-1, NULL, 0) > 0)
		;
}

/* --- a respawning job's restart ---------------------------------------- */

static int n_restarted, n_restart_failed, n_exited;

static void on_restart_event(enum supervisor_event ev, const char *name, pid_t pid, int status,
			     const struct spawn_error *err, void *ud)
{
	if (ev == SUPERVISOR_EXITED)
		n_exited++;
	else if (ev == SUPERVISOR_RESTARTED)
		n_restarted++;
	else if (ev == SUPERVISOR_RESTART_FAILED)
		n_restart_failed++;
	if (ev != SUPERVISOR_EXITED)
		loop_exit(M.loop, 0);
}

/* Launched, exits, and is restarted (or the restart is reported as failed:
 * logged by maitred). Never silently dropped. */
static void restart_scenario(unsigned long n, unsigned long *ret_count)
{
	char *argv[] = { "true", NULL };
	struct job_spec spec = { .argv = argv, .respawn = true };
	struct spawn_error err;
	pid_t pid;

	M = (struct maitred){ 0 };
	hung = false;
	n_restarted = n_restart_failed = n_exited = 0;
	CHECK_EQ(loop_new(&M.loop), 0);
	CHECK_EQ(supervisor_new(M.loop, on_restart_event, NULL, &M.supervisor), 0);
	CHECK_EQ(loop_add_timer(M.loop, USEC_INFINITY, on_guard, NULL, &guard), 0);

	failmalloc_arm(n);
	int r = supervisor_launch(M.supervisor, &spec, NULL, NULL, &pid, &err);
	if (r == 0) {
		loop_timer_set(guard, now_usec() + GUARD_USEC);
		(void)loop_run(M.loop);
	}
	*ret_count = failmalloc_disarm();
	if (r != 0) {
		CHECK_EQ(r, -ENOMEM);
		CHECK_EQ(supervisor_services(M.supervisor), 0);
	} else {
		CHECK(!hung);
		CHECK_EQ(n_exited, 1);
		CHECK_EQ(n_restarted + n_restart_failed, 1);
		CHECK_EQ(supervisor_services(M.supervisor), (unsigned)n_restarted);
		if (!failmalloc_injected())
			CHECK_EQ(n_restarted, 1);
	}
	supervisor_stop_respawning(M.supervisor);
	supervisor_free(M.supervisor);
	loop_timer_free(guard);
	loop_free(M.loop);
}

TEST(sweep_respawn_restart)
{
	log_set_max_level(LOG_CRIT);
	/* The launch, the child watch, the restart: 44 today. */
	unsigned long total = failmalloc_sweep(NULL, restart_scenario, FAILMALLOC_EACH_INJECTED);
	CHECK(total > 20);
	while (waitpid(-1, NULL, 0) > 0)
		;
}
