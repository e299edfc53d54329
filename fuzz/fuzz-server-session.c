/* The gRPC server session (maitred's side of a connection) fed by a hostile
 * client.
 *
 * Input: 8 bytes of schedule seed, 8 bytes of handler choices, then the
 * bytes the client sends (from the HTTP/2 preface on). The client's bytes
 * are fed in chunks of seeded sizes; between chunks the schedule pulls the
 * output (or lets it pile up, as a full socket would), answers deferred
 * calls, lets deadlines pass, or starts a graceful shutdown. Each call the
 * session dispatches is, by two bits of the handler choices, answered at
 * once, failed at once, deferred to be answered later, or deferred for
 * ever (only a reset, a deadline or the end of the connection ends it).
 *
 * Three streaming methods (client, server, bidirectional) take the same
 * request type: their calls are always deferred; each message received is
 * answered with a message (pausing the receiver when the send queue is
 * full or by the choices), the half-close finishes the call, the schedule
 * resumes paused receivers and sends more. */
#include <string.h>

#include "base/time-util.h"
#include "common.pb-c.h"
#include "fuzz.h"
#include "guest.pb-c.h"
#include "rpc/server-session.h"

/* The session takes its clock as data: a fixed one keeps a run repeatable. */
#define FUZZ_CLOCK (1000 * USEC_PER_SEC)

#define MAX_DEFERRED 256

struct state {
	struct rpc_call *deferred[MAX_DEFERRED];
	bool forever[MAX_DEFERRED];
	bool streaming[MAX_DEFERRED];
	unsigned n_deferred; /* slots used; NULL once answered or cancelled */
	unsigned live;	     /* deferred calls not yet answered or cancelled */
	uint64_t choices;
	unsigned n_calls;
};

static struct state st;

static void on_cancel(struct rpc_call *call, void *userdata)
{
	uintptr_t slot = (uintptr_t)userdata;
	FUZZ_CHECK(slot < st.n_deferred && st.deferred[slot] == call);
	st.deferred[slot] = NULL;
	st.live--;
}

static void answer(struct rpc_call *call, unsigned how)
{
	VmTools__MountResponse resp = VM_TOOLS__MOUNT_RESPONSE__INIT;

	if (how & 1) {
		rpc_call_fail(call, RPC_FAILED_PRECONDITION, "failed: %s\n100%% \xc3\xbc", rpc_call_method(call));
		return;
	}
	resp.error = 7;
	rpc_call_reply(call, &resp.base);
}

static void stream_send_one(struct rpc_call *call, uintptr_t slot)
{
	VmTools__MountResponse resp = VM_TOOLS__MOUNT_RESPONSE__INIT;
	resp.error = (int32_t)slot;
	int r = rpc_call_send(call, &resp.base);
	FUZZ_CHECK(r == 0 || r == 1);
	if (r == 1 || (st.choices >> (slot % 64)) & 1)
		rpc_call_pause_receiving(call);
}

static void stream_message(struct rpc_call *call, const ProtobufCMessage *msg, void *userdata)
{
	uintptr_t slot = (uintptr_t)userdata;
	FUZZ_CHECK(msg);
	FUZZ_CHECK(slot < st.n_deferred && st.deferred[slot] == call);
	stream_send_one(call, slot);
}

static void stream_end(struct rpc_call *call, void *userdata)
{
	uintptr_t slot = (uintptr_t)userdata;
	FUZZ_CHECK(slot < st.n_deferred && st.deferred[slot] == call);
	st.deferred[slot] = NULL;
	st.live--;
	if ((st.choices >> (slot % 64)) & 2)
		rpc_call_finish(call, RPC_OK, NULL);
	else
		rpc_call_fail(call, RPC_ABORTED, "ended at slot %u", (unsigned)slot);
}

static void stream_writable(struct rpc_call *call, void *userdata)
{
	uintptr_t slot = (uintptr_t)userdata;
	FUZZ_CHECK(slot < st.n_deferred && st.deferred[slot] == call);
	rpc_call_resume_receiving(call);
}

static void stream_handler(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	FUZZ_CHECK(request);
	st.n_calls++;
	if (st.n_deferred == MAX_DEFERRED) {
		rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "no slot");
		return;
	}
	uintptr_t slot = st.n_deferred;
	st.forever[slot] = false;
	st.streaming[slot] = true;
	st.deferred[st.n_deferred++] = call;
	st.live++;
	rpc_call_set_cancel(call, on_cancel, (void *)slot);
	rpc_call_set_writable(call, stream_writable, (void *)slot);
	rpc_call_set_receiver(call, stream_message, stream_end, (void *)slot);
	stream_send_one(call, slot);
}

/* Resumes paused receivers and sends one more message on each stream. */
static void stream_kick(void)
{
	for (unsigned i = 0; i < st.n_deferred; i++) {
		if (!st.deferred[i] || !st.streaming[i])
			continue;
		stream_send_one(st.deferred[i], i);
		/* stream_send_one may pause: resume after. */
		rpc_call_resume_receiving(st.deferred[i]);
	}
}

static void handler(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	unsigned how = (unsigned)(st.choices >> (2 * (st.n_calls++ % 32))) & 3;

	FUZZ_CHECK(request);
	FUZZ_CHECK(rpc_call_method(call)[0] == '/');
	FUZZ_CHECK(rpc_call_peer(call));
	if (how < 2 || st.n_deferred == MAX_DEFERRED) {
		answer(call, how);
		return;
	}
	uintptr_t slot = st.n_deferred;
	st.forever[st.n_deferred] = how == 3;
	st.deferred[st.n_deferred++] = call;
	st.live++;
	rpc_call_set_cancel(call, on_cancel, (void *)slot);
}

/* The real method table's shape: each path with its request type. */
static const struct rpc_method methods[] = {
	{ "/vm_tools.Maitred/ConfigureNetwork", &vm_tools__network_config_request__descriptor, handler },
	{ "/vm_tools.Maitred/Shutdown", &vm_tools__empty_message__descriptor, handler },
	{ "/vm_tools.Maitred/LaunchProcess", &vm_tools__launch_process_request__descriptor, handler },
	{ "/vm_tools.Maitred/Mount", &vm_tools__mount_request__descriptor, handler },
	{ "/t.S/Client", &vm_tools__mount_request__descriptor, stream_handler, true, false },
	{ "/t.S/Server", &vm_tools__mount_request__descriptor, stream_handler, false, true },
	{ "/t.S/Bidi", &vm_tools__mount_request__descriptor, stream_handler, true, true },
};
static const struct rpc_service service = { methods, sizeof(methods) / sizeof(methods[0]), NULL };

static unsigned n_notified;

static void on_notify(void *userdata)
{
	n_notified++;
}

static void drain(struct rpc_server_session *s)
{
	const uint8_t *out;
	ssize_t n;
	/* Bounded: a session that always has output would be a finding. */
	for (int i = 0; i < 100000; i++) {
		n = rpc_server_session_pull(s, &out);
		if (n <= 0)
			return;
		FUZZ_CHECK(out);
	}
	FUZZ_CHECK(!"pull never ran dry");
}

/* Answers the oldest deferred call that is not left for ever. */
static bool answer_one(unsigned how)
{
	for (unsigned i = 0; i < st.n_deferred; i++) {
		struct rpc_call *c = st.deferred[i];
		if (!c || st.forever[i])
			continue;
		st.deferred[i] = NULL;
		st.live--;
		answer(c, how);
		return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpc_server_session *s;
	struct rpc_limits limits;
	struct fuzz_rng rng;
	bool broken = false;

	memset(&st, 0, sizeof(st));
	rng.s = fuzz_take(&data, &size, 8);
	st.choices = fuzz_take(&data, &size, 8);
	rpc_limits_init(&limits);
	/* Small enough that a fuzzer reaches them. */
	limits.max_concurrent_streams = 8;
	limits.max_header_list_size = 1024;
	limits.max_buffered = 64 * 1024;
	FUZZ_CHECK(rpc_server_session_new(&service, &limits, on_notify, NULL, &s) == 0);
	rpc_server_session_set_peer(s, "fuzz");

	while (size && !broken) {
		size_t n = fuzz_chunk(&rng, size);
		if (rpc_server_session_feed(s, data, n, FUZZ_CLOCK) < 0)
			broken = true; /* conn.c sends what is pending, then closes */
		data += n;
		size -= n;
		switch (fuzz_rng_below(&rng, 16)) {
		case 0: /* the socket is full: output piles up */ break;
		case 1:
		case 2: answer_one((unsigned)fuzz_rng_next(&rng)); break;
		case 3: /* calls with a grpc-timeout of up to a minute expire */
			rpc_server_session_expire(s, FUZZ_CLOCK + 60 * USEC_PER_SEC);
			break;
		case 4: rpc_server_session_expire(s, rpc_server_session_next_deadline(s)); break;
		case 5:
			if (fuzz_rng_below(&rng, 4) == 0)
				rpc_server_session_shutdown(s);
			break;
		case 6: stream_kick(); break;
		default: break;
		}
		FUZZ_CHECK(rpc_server_session_pending_calls(s) == st.live);
		drain(s);
		(void)rpc_server_session_alive(s);
		(void)rpc_server_session_greeted(s);
	}
	/* The rest of the deferred calls are answered, then the connection ends. */
	if (!broken && fuzz_rng_below(&rng, 2))
		while (answer_one((unsigned)fuzz_rng_next(&rng)))
			;
	drain(s);
	rpc_server_session_free(s);
	FUZZ_CHECK(st.live == 0);
	return 0;
}
