/* The gRPC client session (maitctl, and maitred's VmReady) facing a hostile
 * server.
 *
 * Input: 8 bytes of schedule seed, 1 byte choosing the calls, then the
 * bytes the server sends (from its SETTINGS on). The calls are started
 * first, as maitctl and VmReady do; the server's bytes are fed in chunks
 * of seeded sizes, and between chunks the schedule pulls the output, lets
 * deadlines pass, starts one more call, aborts or shuts down. Every call's
 * reply callback must run exactly once; an OK reply is decoded as the
 * caller would. */
#include <string.h>

#include "base/time-util.h"
#include "common.pb-c.h"
#include "fuzz.h"
#include "guest.pb-c.h"
#include "rpc/client-session.h"

#define MAX_CALLS 16

struct call {
	const ProtobufCMessageDescriptor *response_type;
	unsigned replies;
};

static struct call calls[MAX_CALLS];
static unsigned n_calls, n_replied;

static void on_reply(int code, const char *message, const uint8_t *data, size_t len, void *userdata)
{
	struct call *c = userdata;

	FUZZ_CHECK(c->replies++ == 0);
	n_replied++;
	FUZZ_CHECK(message);
	(void)strlen(message);
	if (code == RPC_OK) {
		FUZZ_CHECK(data || len == 0);
		ProtobufCMessage *m = protobuf_c_message_unpack(c->response_type, NULL, len, data);
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
	}
}

static void start_call(struct rpc_client_session *s, unsigned what)
{
	static const char *const argv[] = { "/bin/echo", "hello" };
	VmTools__LaunchProcessRequest launch = VM_TOOLS__LAUNCH_PROCESS_REQUEST__INIT;
	VmTools__EmptyMessage empty = VM_TOOLS__EMPTY_MESSAGE__INIT;
	const ProtobufCMessage *req;
	const char *path;
	struct call *c;

	if (n_calls == MAX_CALLS)
		return;
	c = &calls[n_calls];
	*c = (struct call){ 0 };
	if (what & 1) {
		launch.argv = (char **)argv;
		launch.n_argv = 2;
		launch.wait_for_exit = true;
		req = &launch.base;
		path = "/vm_tools.Maitred/LaunchProcess";
		c->response_type = &vm_tools__launch_process_response__descriptor;
	} else {
		req = &empty.base;
		path = "/vm_tools.StartupListener/VmReady";
		c->response_type = &vm_tools__empty_message__descriptor;
	}
	/* No timeout, or one that the schedule's expiry lets pass. */
	uint64_t timeout = (what & 2) ? 5 * USEC_PER_SEC : 0;
	if (rpc_client_session_call(s, path, req, timeout, on_reply, c) == 0)
		n_calls++;
}

static void drain(struct rpc_client_session *s)
{
	const uint8_t *out;
	for (int i = 0; i < 100000; i++)
		if (rpc_client_session_pull(s, &out) <= 0)
			return;
	FUZZ_CHECK(!"pull never ran dry");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpc_client_session *s;
	struct fuzz_rng rng;
	unsigned what;

	n_calls = n_replied = 0;
	rng.s = fuzz_take(&data, &size, 8);
	what = (unsigned)fuzz_take(&data, &size, 1);
	FUZZ_CHECK(rpc_client_session_new(&s) == 0);
	for (unsigned i = 0; i <= (what >> 6); i++)
		start_call(s, what >> (2 * i));
	drain(s);

	while (size) {
		size_t n = fuzz_chunk(&rng, size);
		int r = rpc_client_session_feed(s, data, n);
		data += n;
		size -= n;
		if (r < 0) {
			/* unary.c: a broken connection fails what is pending. */
			rpc_client_session_abort(s, RPC_UNAVAILABLE, "protocol error");
			break;
		}
		switch (fuzz_rng_below(&rng, 16)) {
		case 0: break; /* output piles up */
		case 1: rpc_client_session_expire(s, now_usec() + 60 * USEC_PER_SEC); break;
		case 2: rpc_client_session_expire(s, rpc_client_session_next_deadline(s)); break;
		case 3: start_call(s, (unsigned)fuzz_rng_next(&rng)); break;
		case 4:
			if (fuzz_rng_below(&rng, 4) == 0)
				rpc_client_session_shutdown(s);
			break;
		default: break;
		}
		FUZZ_CHECK(rpc_client_session_pending_calls(s) == n_calls - n_replied);
		drain(s);
		(void)rpc_client_session_alive(s);
	}
	drain(s);
	rpc_client_session_free(s);
	FUZZ_CHECK(n_replied == n_calls);
	for (unsigned i = 0; i < n_calls; i++)
		FUZZ_CHECK(calls[i].replies == 1);
	return 0;
}
