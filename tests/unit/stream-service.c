#include "stream-service.h"

#include <stdlib.h>
#include <string.h>

#include "streamtest.pb-c.h"

struct stream_stats stream_stats;
bool stream_pause_echo;
bool stream_raw_add;
void (*stream_cancel_hook)(void);

void stream_service_reset(void)
{
	stream_stats = (struct stream_stats){ 0 };
	stream_pause_echo = false;
	stream_raw_add = false;
}

/* One call's state, freed when the call ends or is cancelled. */
struct op {
	struct rpc_call *call;
	int64_t left, size, total, count, bytes;
	uint8_t *data;
};

static void op_free(struct op *o)
{
	if (o && stream_stats.echo == o->call)
		stream_stats.echo = NULL;
	if (o)
		free(o->data);
	free(o);
}

static void on_cancel(struct rpc_call *call, void *ud)
{
	stream_stats.cancelled++;
	op_free(ud);
	if (stream_cancel_hook)
		stream_cancel_hook();
}

static struct op *op_new(struct rpc_call *call)
{
	struct op *o = calloc(1, sizeof(*o));
	if (!o) {
		rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	o->call = call;
	stream_stats.calls++;
	rpc_call_set_cancel(call, on_cancel, o);
	return o;
}

/* Sends; false once the call is over (failed here). */
static bool op_send(struct op *o, const ProtobufCMessage *m)
{
	int r = rpc_call_send(o->call, m);
	size_t q = rpc_call_queued(o->call);

	if (q > stream_stats.max_queued)
		stream_stats.max_queued = q;
	if (r < 0) {
		rpc_call_fail(o->call, RPC_INTERNAL, "could not send: %s", strerror(-r));
		op_free(o);
		return false;
	}
	if (r > 0) {
		stream_stats.high_water++;
		/* Echo produces from what it receives: stop receiving. */
		rpc_call_pause_receiving(o->call);
	}
	return true;
}

/* --- Echo ---------------------------------------------------------------- */

static void echo_message(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	stream_stats.messages++;
	(void)op_send(ud, msg);
}

static void echo_end(struct rpc_call *call, void *ud)
{
	stream_stats.ended++;
	rpc_call_finish(call, RPC_OK, NULL);
	op_free(ud);
}

static void echo_writable(struct rpc_call *call, void *ud)
{
	stream_stats.writable++;
	rpc_call_resume_receiving(call);
}

static void h_echo(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	struct op *o = op_new(call);
	if (!o)
		return;
	stream_stats.echo = call;
	rpc_call_set_writable(call, echo_writable, o);
	rpc_call_set_receiver(call, echo_message, echo_end, o);
	echo_message(call, request, o);
	if (stream_pause_echo && stream_stats.echo == call)
		rpc_call_pause_receiving(call);
}

/* --- Add ----------------------------------------------------------------- */

static void add_message(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	const Streamtest__Chunk *c = (const Streamtest__Chunk *)msg;
	struct op *o = ud;

	stream_stats.messages++;
	if (c->value < 0) {
		rpc_call_fail(call, RPC_FAILED_PRECONDITION, "negative value %lld", (long long)c->value);
		op_free(o);
		return;
	}
	o->total += c->value;
	o->count++;
	o->bytes += (int64_t)c->data.len;
}

static void add_data(struct rpc_call *call, const uint8_t *data, size_t len, void *ud)
{
	struct op *o = ud;

	stream_stats.messages++;
	stream_stats.raw++;
	if (len && data[0] == 0xEE) {
		rpc_call_fail(call, RPC_FAILED_PRECONDITION, "data starting with 0xEE");
		op_free(o);
		return;
	}
	o->count++;
	o->bytes += (int64_t)len;
}

static void add_end(struct rpc_call *call, void *ud)
{
	struct op *o = ud;
	Streamtest__Sum sum = STREAMTEST__SUM__INIT;

	stream_stats.ended++;
	sum.total = o->total;
	sum.count = o->count;
	sum.bytes = o->bytes;
	rpc_call_reply(call, &sum.base);
	op_free(o);
}

static void h_add(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	struct op *o = op_new(call);
	if (!o)
		return;
	rpc_call_set_receiver(call, add_message, add_end, o);
	if (stream_raw_add)
		rpc_call_set_data_receiver(call, 1 /* Chunk.data */, add_data);
	add_message(call, request, o);
}

/* --- Countdown ----------------------------------------------------------- */

static void countdown_produce(struct op *o)
{
	Streamtest__Chunk c = STREAMTEST__CHUNK__INIT;

	c.data.data = o->data;
	c.data.len = (size_t)o->size;
	while (o->left > 0) {
		c.value = o->left--;
		int r = rpc_call_send(o->call, &c.base);
		size_t q = rpc_call_queued(o->call);
		if (q > stream_stats.max_queued)
			stream_stats.max_queued = q;
		if (r < 0) {
			rpc_call_fail(o->call, RPC_INTERNAL, "could not send: %s", strerror(-r));
			op_free(o);
			return;
		}
		if (r > 0) {
			stream_stats.high_water++;
			return; /* countdown_writable goes on */
		}
	}
	rpc_call_finish(o->call, RPC_OK, NULL);
	op_free(o);
}

static void countdown_writable(struct rpc_call *call, void *ud)
{
	stream_stats.writable++;
	countdown_produce(ud);
}

static void h_countdown(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	const Streamtest__Count *req = (const Streamtest__Count *)request;
	struct op *o;

	if (req->size < 0 || req->size > 4 * 1024 * 1024 - 64 || req->from < 0) {
		rpc_call_fail(call, RPC_INVALID_ARGUMENT, "size or from out of range");
		return;
	}
	o = op_new(call);
	if (!o)
		return;
	o->left = req->from;
	o->size = req->size;
	o->data = calloc(1, (size_t)req->size + 1);
	if (!o->data) {
		rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
		op_free(o);
		return;
	}
	memset(o->data, 'c', (size_t)req->size);
	rpc_call_set_writable(call, countdown_writable, o);
	countdown_produce(o);
}

static const struct rpc_method methods[] = {
	{ "/streamtest.Stream/Echo", &streamtest__chunk__descriptor, h_echo, true, true },
	{ "/streamtest.Stream/Add", &streamtest__chunk__descriptor, h_add, true, false },
	{ "/streamtest.Stream/Countdown", &streamtest__count__descriptor, h_countdown, false, true },
};
const struct rpc_service stream_service = { methods, 3, NULL };
