/* Allocation-failure sweep over whole gRPC calls through the server core,
 * driven by a real HTTP/2 client in memory: for every N, the N-th
 * allocation fails. Each run must end every call with a status (or drop
 * the connection, which the client sees), end the connection on a graceful
 * stop, leak nothing, and the next call must be served. */
#include "failmalloc.h"
#include "guest.pb-c.h"
#include "h2-peer.h"
#include "rpc/server-session.h"
#include "test.h"

static struct rpc_call *deferred;

static void h_mount(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	const VmTools__MountRequest *req = (const VmTools__MountRequest *)request;
	VmTools__MountResponse resp = VM_TOOLS__MOUNT_RESPONSE__INIT;
	if (strcmp(req->source, "fail") == 0)
		return rpc_call_fail(call, RPC_FAILED_PRECONDITION, "refused: %s", req->target);
	resp.error = (int32_t)strlen(req->source);
	rpc_call_reply(call, &resp.base);
}

static void on_cancel(struct rpc_call *call, void *ud)
{
	deferred = NULL;
}

/* Answered later, from outside feed(), like a process exit. */
static void h_defer(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	rpc_call_set_cancel(call, on_cancel, NULL);
	deferred = call;
}

static const struct rpc_method methods[] = {
	{ "/t.S/Mount", &vm_tools__mount_request__descriptor, h_mount },
	{ "/t.S/Defer", &vm_tools__launch_process_request__descriptor, h_defer },
};
static const struct rpc_service service = { methods, 2, NULL };

#define N_CALLS 8

static uint8_t ok_body[64], fail_body[64], defer_body[16], big_prefix[5];
static const uint8_t nul_body[] = "\0\0\0\0\x04\x0a\x02x\0"; /* source: "x\0" */
static const size_t nul_len = sizeof(nul_body) - 1;
static size_t ok_len, fail_len, defer_len;

static size_t mount_body(uint8_t *out, const char *source, const char *target)
{
	VmTools__MountRequest req = VM_TOOLS__MOUNT_REQUEST__INIT;
	uint8_t msg[48];
	req.source = (char *)source;
	req.target = (char *)target;
	return h2_grpc_frame(out, msg, vm_tools__mount_request__pack(&req, msg), false);
}

static void bodies(void)
{
	ok_len = mount_body(ok_body, "abc", "");
	fail_len = mount_body(fail_body, "fail", "100% sure");
	defer_len = h2_grpc_frame(defer_body, NULL, 0, false);
	h2_grpc_frame(big_prefix, NULL, 0, false);
	big_prefix[1] = 0x7f; /* 2 GiB announced */
}

/* The session cannot go on: the transport would drop the connection. */
static bool session_dead(struct rpc_server_session *s, int fed)
{
	const uint8_t *d;
	return fed < 0 || rpc_server_session_pull(s, &d) < 0 || !rpc_server_session_alive(s);
}

/* A stream got an answer: a status, or a reset. */
static bool answered(struct h2_result *r)
{
	return r->closed && (r->grpc_status >= 0 || r->rst_code != 0);
}

/* One OK call, one failing call with a message to encode, one unknown
 * method, one call answered later, and the refusals made before any
 * handler: bad content-type, a deadline already over, a NUL byte, a
 * message announced too large. */
static void scenario(unsigned long n, unsigned long *ret_count)
{
	struct rpc_server_session *s = NULL;
	struct h2_peer *p = h2_peer_new();
	int32_t ids[N_CALLS];
	int fed, r;

	deferred = NULL;
	failmalloc_arm(n);
	r = rpc_server_session_new(&service, NULL, NULL, NULL, &s);
	if (r < 0) {
		*ret_count = failmalloc_disarm();
		CHECK_EQ(r, -ENOMEM);
		s = NULL;
	} else {
		ids[0] = h2_peer_request(p, "/t.S/Mount", "application/grpc", ok_body, ok_len, NULL, true);
		ids[1] = h2_peer_request(p, "/t.S/Mount", "application/grpc", fail_body, fail_len, NULL, true);
		ids[2] = h2_peer_request(p, "/t.S/Nope", "application/grpc", ok_body, ok_len, NULL, true);
		ids[3] = h2_peer_request(p, "/t.S/Defer", "application/grpc", defer_body, defer_len, NULL, true);
		ids[4] = h2_peer_request(p, "/t.S/Mount", "text/plain", ok_body, ok_len, NULL, true);
		ids[5] = h2_peer_request(p, "/t.S/Mount", "application/grpc", ok_body, ok_len, "1n", true);
		ids[6] = h2_peer_request(p, "/t.S/Mount", "application/grpc", nul_body, nul_len, NULL, true);
		/* Announces more than the limit and keeps the stream open: answered
		 * early, then reset. */
		ids[7] = h2_peer_request(p, "/t.S/Mount", "application/grpc", big_prefix, sizeof(big_prefix), NULL,
					 false);
		fed = h2_pump(p, s);
		if (deferred) {
			VmTools__LaunchProcessResponse resp = VM_TOOLS__LAUNCH_PROCESS_RESPONSE__INIT;
			rpc_call_reply(deferred, &resp.base);
			deferred = NULL;
			if (fed >= 0)
				fed = h2_pump(p, s);
		}
		bool dead_before_stop = session_dead(s, fed);
		/* A graceful stop then ends the connection (GOAWAY, nothing in
		 * flight): an idle client may not hold it open. */
		rpc_server_session_shutdown(s);
		int fed_after_stop = h2_pump(p, s);
		*ret_count = failmalloc_disarm();
		CHECK(session_dead(s, fed_after_stop));
		/* No hang: every call has its answer, or the connection is gone. */
		if (!dead_before_stop) {
			for (int i = 0; i < N_CALLS; i++)
				CHECK(answered(h2_peer_result(p, ids[i])));
			CHECK_EQ(rpc_server_session_pending_calls(s), 0);
			/* Without a failure, every answer is the right one. */
			if (!failmalloc_injected()) {
				CHECK_EQ(h2_peer_result(p, ids[0])->grpc_status, 0);
				CHECK_EQ(h2_peer_result(p, ids[1])->grpc_status, RPC_FAILED_PRECONDITION);
				CHECK_STR(h2_peer_result(p, ids[1])->grpc_message, "refused: 100% sure");
				CHECK_EQ(h2_peer_result(p, ids[2])->grpc_status, RPC_UNIMPLEMENTED);
				CHECK_EQ(h2_peer_result(p, ids[3])->grpc_status, 0);
				CHECK_EQ(h2_peer_result(p, ids[4])->http_status, 415);
				CHECK_EQ(h2_peer_result(p, ids[5])->grpc_status, RPC_DEADLINE_EXCEEDED);
				CHECK_EQ(h2_peer_result(p, ids[6])->grpc_status, RPC_INVALID_ARGUMENT);
				CHECK_EQ(h2_peer_result(p, ids[7])->grpc_status, RPC_RESOURCE_EXHAUSTED);
			}
		}
		rpc_server_session_free(TAKE_PTR(s));
	}
	/* The next call is served, on a new connection. */
	h2_peer_free(p);
	p = h2_peer_new();
	CHECK_EQ(rpc_server_session_new(&service, NULL, NULL, NULL, &s), 0);
	int32_t id = h2_peer_request(p, "/t.S/Mount", "application/grpc", ok_body, ok_len, NULL, true);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, 0);
	rpc_server_session_free(s);
	h2_peer_free(p);
}

TEST(sweep_server_session_calls)
{
	bodies();
	unsigned long total = failmalloc_sweep(NULL, scenario, FAILMALLOC_EACH_INJECTED);
	/* nghttp2's session, HPACK tables, streams, frames, our streams, calls,
	 * bodies, decoded messages and responses. */
	CHECK(total > 50);
}
