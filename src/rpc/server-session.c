#include "server-session.h"

#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/list.h"
#include "base/time-util.h"
#include "rpc/alloc.h"
#include "rpc/inflate.h"
#include "rpc/outq.h"
#include "rpc/reset-filter.h"
#include "pb/bytes-field.h"
#include "pb/nul-check.h"
#include "rpc/h2.h"
#include "rpc/wire.h"

#define RPC_MAX_PATH 256
/* Flow control (see rpc_server_session_new): what a stream may send before
 * its message is admitted; enough for most requests whole. */
#define RPC_STREAM_WINDOW (16 * 1024)
/* A client-streaming call sending in bulk gets its window raised to this,
 * taken from the streaming pool (half of the reservation budget). */
#define RPC_STREAM_WINDOW_MAX (1024 * 1024)
#define RPC_MAX_MESSAGE_TEXT 512
/* An emptied receive buffer larger than this is freed (idle streams), or
 * kept as the session's spare (body_give_up) when not larger than the
 * second: the buffer of messages up to 1 MiB, what gRPC clients send in
 * bulk (64 KiB to 1 MiB), held only while the connection has streams. */
#define RPC_BODY_KEEP (64 * 1024)
#define RPC_BODY_SPARE_MAX (2 * 1024 * 1024)

struct rpc_stream {
	struct rpc_server_session *session;
	int32_t id;
	char path[RPC_MAX_PATH];
	bool path_too_long;
	bool post;
	bool content_type_ok;
	char content_type[64];
	enum rpc_encoding encoding;
	/* grpc-encoding named something we cannot inflate (kept for the reply). */
	char bad_encoding[32];
	uint64_t deadline;
	size_t header_bytes;
	/* Over max_header_list_size: the rest is ignored, the call answered
	 * RESOURCE_EXHAUSTED once the HEADERS frame is in. */
	bool headers_too_big;
	struct buf body;
	/* Streaming: body.data[body_off..] is not delivered yet. */
	size_t body_off;
	/* The final status is decided (the call finished, failed or was
	 * refused); further request bytes are dropped. */
	bool answered;
	/* Response headers submitted with a data provider (messages follow). */
	bool responding;
	/* The data provider said DEFERRED (queue empty): resume on send. */
	bool deferred;
	/* The final status, sent as trailers once the queue is out. */
	bool finished;
	int final_code;
	char *final_message;
	struct rpc_outq out;
	/* rpc_call_send() said "full": the writable callback is owed. */
	bool want_writable, writable_due;
	size_t send_high, send_low; /* RPC_SEND_HIGH_WATER, _LOW_WATER unless set */
	/* Client streaming: the receiver, and delivery state. */
	rpc_message_fn on_message;
	rpc_end_fn on_end;
	rpc_data_fn on_data; /* messages that are data_field alone, undecoded */
	unsigned data_field;
	void *recv_userdata;
	bool paused, pumping, pump_due, end_delivered;
	/* Positions in the stream's request bytes: received, given back to the
	 * window, delivered; an admitted large message ends at reserve_end. */
	uint64_t rx_total, consumed_total, delivered_total, reserve_end;
	/* Window above RPC_STREAM_WINDOW, from the streaming pool. */
	size_t granted;
	/* The client ended its side (END_STREAM seen). */
	bool request_done;
	/* Answered early: reset the stream once the answer is out, so the
	 * client stops sending. */
	bool reset_after_answer;
	struct rpc_call *call;
	/* Found from the headers, before any of the body is read. */
	const struct rpc_method *method;
	/* Bytes of the connection's budget held for this stream's message (0:
	 * not admitted yet); waiting: its prefix is in, the budget was short. */
	size_t reserved;
	bool waiting;
	/* Received while not admitted, not yet given back to its window. */
	size_t unconsumed;
	struct rpc_stream *prev, *next;
};

struct rpc_call {
	struct rpc_server_session *session;
	struct rpc_stream *stream;
	const struct rpc_method *method;
	rpc_cancel_fn cancel;
	void *cancel_userdata;
	rpc_writable_fn writable;
	void *writable_userdata;
};

struct rpc_server_session {
	nghttp2_session *h2;
	const struct rpc_service *service;
	struct rpc_limits limits;
	rpc_notify_fn notify;
	void *notify_userdata;
	rpc_reject_fn reject;
	void *reject_userdata;
	rpc_stream_end_fn stream_end;
	void *stream_end_userdata;
	struct rpc_stream *streams;
	unsigned pending_calls;
	size_t buffered;
	/* Admitted messages' reservations, and their cap; window granted to
	 * streaming calls (at most half the cap, so large unary messages are
	 * always admitted in the end). */
	size_t reserved, reserve_budget, granted;
	/* Some stream has deliveries or a writable callback owed (pull). */
	bool pump_due, writable_due;
	/* Inside nghttp2 processing: no notify, the caller writes after. */
	unsigned busy;
	bool shutting_down;
	bool greeted;
	/* The caller's clock, given with the bytes (sans-I/O: the session
	 * never reads one): grpc-timeout is relative to the arrival. */
	uint64_t now;
	/* An answer could not be queued: feed and pull fail from now on. */
	bool broken;
	char peer[80];
	/* Why the connection is being ended, when the peer broke HTTP/2:
	 * the GOAWAY nghttp2 sent, or the error it returned ("" if none). */
	char failure[128];
	struct reset_filter filter;
	/* A receive buffer a stream gave up, for the next one that needs
	 * one; kept only while the session has streams (body_give_up). */
	struct buf spare;
};

void rpc_limits_init(struct rpc_limits *l)
{
	*l = (struct rpc_limits){
		.max_concurrent_streams = 128,
		.max_header_list_size = 16 * 1024,
		.max_buffered = 16 * 1024 * 1024,
	};
}

static void session_notify(struct rpc_server_session *s)
{
	if (!s->busy && s->notify)
		s->notify(s->notify_userdata);
}

/* --- responses --------------------------------------------------------- */

/* An answer nghttp2 could not queue (no memory) would leave its call
 * hanging: the connection is given up instead, which the client sees. */
static int session_check_submit(struct rpc_server_session *s, int r)
{
	if (r == 0)
		return 0;
	s->broken = true;
	return -ENOMEM;
}

static int submit_trailers_only(struct rpc_server_session *s, struct rpc_stream *st, const char *http_status, int code,
				const char *message)
{
	char code_str[12];
	_cleanup_free_ char *encoded = NULL;

	snprintf(code_str, sizeof(code_str), "%d", code);
	/* Without memory for the message, the status alone still answers. */
	if (message && *message)
		encoded = rpc_percent_encode(message);
	nghttp2_nv nva[] = {
		RPC_NV(":status", http_status),
		RPC_NV("content-type", "application/grpc"),
		RPC_NV("grpc-accept-encoding", RPC_ACCEPT_ENCODING),
		RPC_NV("grpc-status", code_str),
		RPC_NV("grpc-message", encoded ? encoded : ""),
	};
	st->answered = true;
	int r = nghttp2_submit_response(s->h2, st->id, nva, encoded ? 5 : 4, NULL);
	/* A RST_STREAM queued now would make nghttp2 drop these headers:
	 * it is sent from on_frame_send instead. */
	st->reset_after_answer = !st->request_done;
	return session_check_submit(s, r);
}

/* The trailers that end a response with messages; false without memory. */
static bool submit_final_trailers(nghttp2_session *h2, struct rpc_stream *st)
{
	char code_str[12];
	_cleanup_free_ char *encoded = NULL;

	if (st->final_code == RPC_OK && !st->final_message) {
		nghttp2_nv trailers[] = { RPC_NV("grpc-status", "0") };
		return nghttp2_submit_trailer(h2, st->id, trailers, 1) == 0;
	}
	snprintf(code_str, sizeof(code_str), "%d", st->final_code);
	if (st->final_message)
		encoded = rpc_percent_encode(st->final_message);
	nghttp2_nv trailers[] = {
		RPC_NV("grpc-status", code_str),
		RPC_NV("grpc-message", encoded ? encoded : ""),
	};
	return nghttp2_submit_trailer(h2, st->id, trailers, encoded ? 2 : 1) == 0;
}

/* Hands out the queued messages; with the queue empty, the trailers once
 * the call is finished, else DEFERRED until the next send or finish. */
static ssize_t response_read(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
			     nghttp2_data_source *source, void *user_data)
{
	struct rpc_stream *st = source->ptr;
	size_t n = rpc_outq_read(&st->out, buf, length);

	if (st->want_writable && st->out.bytes < st->send_low) {
		st->want_writable = false;
		st->writable_due = true;
		st->session->writable_due = true;
	}
	if (st->out.bytes)
		return (ssize_t)n;
	if (st->finished) {
		/* A response without its status is no answer: without memory
		 * for the trailers, reset the stream instead. */
		if (!submit_final_trailers(h2, st))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		*data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		return (ssize_t)n;
	}
	if (n)
		return (ssize_t)n;
	st->deferred = true;
	return NGHTTP2_ERR_DEFERRED;
}

/* Queues one message of len bytes that fill writes in place (outq.h);
 * the response headers go out with the first. */
static int stream_send(struct rpc_server_session *s, struct rpc_stream *st, size_t len, rpc_fill_fn fill, void *arg)
{
	nghttp2_nv nva[] = {
		RPC_NV(":status", "200"),
		RPC_NV("content-type", "application/grpc"),
		RPC_NV("grpc-accept-encoding", RPC_ACCEPT_ENCODING),
	};
	nghttp2_data_provider prd = { .source.ptr = st, .read_callback = response_read };
	int r = rpc_outq_push_filled(&st->out, len, fill, arg);

	if (r < 0)
		return r;
	if (!st->responding) {
		r = nghttp2_submit_response(s->h2, st->id, nva, ARRAY_SIZE(nva), &prd);
		if (r != 0) {
			rpc_outq_clear(&st->out);
			return session_check_submit(s, r);
		}
		st->responding = true;
	}
	if (st->deferred) {
		st->deferred = false;
		(void)nghttp2_session_resume_data(s->h2, st->id);
	}
	return 0;
}

/* The final status of a stream that has sent its response headers: the
 * trailers follow the queued messages. */
static void stream_set_final(struct rpc_server_session *s, struct rpc_stream *st, int code, const char *message)
{
	st->answered = true;
	st->finished = true;
	st->final_code = code;
	free(st->final_message);
	/* Without memory for the message, the status alone still answers. */
	st->final_message = message && *message ? strdup(message) : NULL;
	st->reset_after_answer = !st->request_done;
	if (st->deferred) {
		st->deferred = false;
		(void)nghttp2_session_resume_data(s->h2, st->id);
	}
}

/* --- calls ------------------------------------------------------------- */

static void call_detach_and_free(struct rpc_call *c)
{
	if (c->stream)
		c->stream->call = NULL;
	c->session->pending_calls--;
	free(c);
}

/* The call will never be answered: let its owner forget it, then free it. */
static void call_cancel(struct rpc_call *c)
{
	if (c->stream)
		c->stream->call = NULL;
	c->stream = NULL;
	if (c->cancel)
		c->cancel(c, c->cancel_userdata);
	call_detach_and_free(c);
}

static void stream_release(struct rpc_stream *st);

/* Ends the call with a status (after its queued messages) and frees it. */
static void call_finish(struct rpc_call *c, int code, const char *message)
{
	struct rpc_server_session *s = c->session;
	struct rpc_stream *st = c->stream;

	call_detach_and_free(c);
	if (st && !st->answered) {
		stream_release(st);
		if (st->responding)
			stream_set_final(s, st, code, message);
		else
			(void)submit_trailers_only(s, st, "200", code, message);
	}
	session_notify(s);
}

void rpc_call_reply(struct rpc_call *c, const ProtobufCMessage *response)
{
	struct rpc_server_session *s = c->session;
	struct rpc_stream *st = c->stream;
	size_t len = protobuf_c_message_get_packed_size(response);

	if (st && !st->answered && stream_send(s, st, len, rpc_fill_packed, (void *)response) < 0 && !st->responding) {
		call_finish(c, RPC_INTERNAL, "could not send the response");
		return;
	}
	call_finish(c, RPC_OK, NULL);
}

void rpc_call_fail(struct rpc_call *c, int code, const char *fmt, ...)
{
	char msg[RPC_MAX_MESSAGE_TEXT];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	call_finish(c, code, msg);
}

void rpc_call_finish(struct rpc_call *c, int code, const char *fmt, ...)
{
	char msg[RPC_MAX_MESSAGE_TEXT];
	va_list ap;

	if (!fmt) {
		call_finish(c, code, NULL);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	call_finish(c, code, msg);
}

static int call_send(struct rpc_call *c, size_t len, rpc_fill_fn fill, void *arg)
{
	struct rpc_stream *st = c->stream;
	int r;

	if (!st || st->answered)
		return -ECANCELED;
	r = stream_send(c->session, st, len, fill, arg);
	if (r < 0)
		return r;
	session_notify(c->session);
	if (st->out.bytes < st->send_high)
		return 0;
	st->want_writable = true;
	return 1;
}

int rpc_call_send(struct rpc_call *c, const ProtobufCMessage *msg)
{
	return call_send(c, protobuf_c_message_get_packed_size(msg), rpc_fill_packed, (void *)msg);
}

int rpc_call_send_encoded(struct rpc_call *c, const uint8_t *data, size_t len)
{
	return call_send(c, len, rpc_fill_copy, (void *)data);
}

int rpc_call_send_filled(struct rpc_call *c, size_t len, rpc_fill_fn fill, void *arg)
{
	return call_send(c, len, fill, arg);
}

void rpc_call_set_send_marks(struct rpc_call *c, size_t high, size_t low)
{
	if (!c->stream)
		return;
	c->stream->send_high = high;
	c->stream->send_low = MIN(low, high);
}

void rpc_call_set_writable(struct rpc_call *c, rpc_writable_fn fn, void *userdata)
{
	c->writable = fn;
	c->writable_userdata = userdata;
}

size_t rpc_call_queued(const struct rpc_call *c)
{
	return c->stream ? c->stream->out.bytes : 0;
}

static void stream_schedule_pump(struct rpc_stream *st)
{
	st->pump_due = true;
	st->session->pump_due = true;
	session_notify(st->session);
}

void rpc_call_set_receiver(struct rpc_call *c, rpc_message_fn on_message, rpc_end_fn on_end, void *userdata)
{
	struct rpc_stream *st = c->stream;

	if (!st)
		return;
	st->on_message = on_message;
	st->on_end = on_end;
	st->recv_userdata = userdata;
	/* Inside the handler the delivery loop goes on by itself. */
	if (!st->pumping)
		stream_schedule_pump(st);
}

void rpc_call_set_data_receiver(struct rpc_call *c, unsigned field, rpc_data_fn on_data)
{
	if (!c->stream)
		return;
	c->stream->on_data = on_data;
	c->stream->data_field = field;
}

void rpc_call_pause_receiving(struct rpc_call *c)
{
	if (c->stream)
		c->stream->paused = true;
}

void rpc_call_resume_receiving(struct rpc_call *c)
{
	struct rpc_stream *st = c->stream;

	if (!st || !st->paused)
		return;
	st->paused = false;
	if (!st->pumping)
		stream_schedule_pump(st);
}

void rpc_call_set_cancel(struct rpc_call *c, rpc_cancel_fn fn, void *userdata)
{
	c->cancel = fn;
	c->cancel_userdata = userdata;
}

const char *rpc_call_method(const struct rpc_call *c)
{
	return c->method->path;
}
const char *rpc_call_peer(const struct rpc_call *c)
{
	return c->session->peer;
}
/* The service in the list whose table holds m. */
static const struct rpc_service *service_of(const struct rpc_service *svc, const struct rpc_method *m)
{
	while (m < svc->methods || m >= svc->methods + svc->n_methods)
		svc = svc->next;
	return svc;
}

void *rpc_call_service_userdata(const struct rpc_call *c)
{
	return service_of(c->session->service, c->method)->userdata;
}

/* --- request handling ---------------------------------------------------- */

static struct rpc_stream *stream_get(struct rpc_server_session *s, int32_t id)
{
	return nghttp2_session_get_stream_user_data(s->h2, id);
}

static void admit_waiting(struct rpc_server_session *s);

/* Request messages are delivered one by one as they come (client
 * streaming), rather than the whole body at the half-close. */
static bool stream_incremental(const struct rpc_stream *st)
{
	return st->method && st->method->client_streaming;
}

/* Giving a window back queues a WINDOW_UPDATE; without memory for it the
 * window is never given back and the peer waits for ever: the connection
 * ends instead, as when any frame could not be queued (pull()). */
static void window_check(struct rpc_server_session *s, int r)
{
	if (r == NGHTTP2_ERR_NOMEM)
		s->broken = true;
}

static bool stream_bidirectional(const struct rpc_stream *st)
{
	return st->method && st->method->client_streaming && st->method->server_streaming;
}

/* The stream's receive window as nghttp2 keeps it. Not always the base
 * window plus the grant: a stream opened before the client had our
 * SETTINGS started with HTTP/2's 65535 bytes, and their acknowledgment
 * lowers it by the difference, a raise made before it included. */
static size_t stream_window(const struct rpc_stream *st)
{
	int32_t w = nghttp2_session_get_stream_effective_local_window_size(st->session->h2, st->id);
	return w > 0 ? (size_t)w : 0;
}

/* Gives the window back up to pos (a position in the request bytes). */
static void stream_consume_to(struct rpc_stream *st, uint64_t pos)
{
	if (pos <= st->consumed_total)
		return;
	window_check(st->session,
		     nghttp2_session_consume_stream(st->session->h2, st->id, (size_t)(pos - st->consumed_total)));
	st->consumed_total = pos;
	st->unconsumed = (size_t)(st->rx_total - st->consumed_total);
}

/* A stream's emptied receive buffer, no longer needed: the session's
 * spare if it is larger than the spare and not too large, else freed. A
 * stream receiving large messages one after another then takes the same
 * buffer back for each (body_take_spare) instead of growing a new one
 * from 256 bytes and freeing it per message: above maitred's fixed
 * 128 KiB mmap threshold (agent/malloc-tuning.c) each was a fresh
 * mapping, its pages faulted in and zeroed (62 000 page faults per GiB
 * of 128 KiB messages). */
static void body_give_up(struct rpc_server_session *s, struct buf *b)
{
	if (s->streams && b->cap <= RPC_BODY_SPARE_MAX && b->cap > s->spare.cap) {
		buf_clear(&s->spare);
		s->spare = *b;
		s->spare.len = 0;
		*b = (struct buf){ 0 };
		return;
	}
	buf_clear(b);
}

/* Before a stream with no buffer appends to it. */
static void body_take_spare(struct rpc_server_session *s, struct rpc_stream *st)
{
	if (!st->body.data && s->spare.data) {
		st->body = s->spare;
		s->spare = (struct buf){ 0 };
	}
}

/* The stream's request data is no longer needed: free it, give its
 * reservation and window back and let waiting streams in. */
static void stream_release(struct rpc_stream *st)
{
	struct rpc_server_session *s = st->session;

	s->buffered -= st->body.len - st->body_off;
	body_give_up(s, &st->body);
	st->body_off = 0;
	st->waiting = false;
	if (st->unconsumed) {
		window_check(s, nghttp2_session_consume_stream(s->h2, st->id, st->unconsumed));
		st->unconsumed = 0;
		st->consumed_total = st->rx_total;
	}
	bool returned = st->granted || st->reserved;

	s->granted -= st->granted;
	st->granted = 0;
	st->reserve_end = 0;
	s->reserved -= st->reserved;
	st->reserved = 0;
	/* A grant given back counts as much as a reservation: a stream
	 * waiting for the budget that only grants held would wait for ever. */
	if (returned)
		admit_waiting(s);
}

/* Ends the stream with an error: the handler hears of it first (cancel),
 * then the status goes out (after the queued messages, if any). */
static void stream_fail(struct rpc_stream *st, int code, const char *message)
{
	struct rpc_server_session *s = st->session;

	if (st->call)
		call_cancel(st->call);
	stream_release(st);
	if (st->answered)
		return;
	if (st->responding)
		stream_set_final(s, st, code, message);
	else
		(void)submit_trailers_only(s, st, "200", code, message);
}

/* Refused before any handler saw it: tell the program (which logs). */
static void stream_reject(struct rpc_stream *st, int code, const char *message)
{
	struct rpc_server_session *s = st->session;

	if (s->reject)
		s->reject(s->peer, st->path, code, message, s->reject_userdata);
	stream_fail(st, code, message);
}

/* Reserves the whole message (prefix included) and opens the stream's
 * window for it; false when the budget is short (the window stays shut).
 * A streaming call's window keeps its size: the message's bytes are given
 * back as they come instead, the ones after it only once delivered. */
static bool stream_admit(struct rpc_stream *st, uint32_t msglen)
{
	struct rpc_server_session *s = st->session;
	size_t need = RPC_PREFIX_SIZE + (size_t)msglen;

	if (s->reserved + s->granted + need > s->reserve_budget)
		return false;
	s->reserved += need;
	st->reserved = need;
	st->waiting = false;
	if (stream_incremental(st)) {
		st->reserve_end = st->delivered_total + need;
		stream_consume_to(st, MIN(st->rx_total, st->reserve_end));
		return true;
	}
	window_check(s, nghttp2_session_consume_stream(s->h2, st->id, st->unconsumed));
	st->unconsumed = 0;
	if (need > RPC_STREAM_WINDOW)
		window_check(s, nghttp2_session_set_local_window_size(s->h2, NGHTTP2_FLAG_NONE, st->id, (int32_t)need));
	return true;
}

/* Oldest first (lowest stream id), so a big message is not starved by
 * later small ones. */
static void admit_waiting(struct rpc_server_session *s)
{
	for (;;) {
		struct rpc_stream *first = NULL;
		bool compressed;
		uint32_t msglen;

		for (struct rpc_stream *st = s->streams; st; st = st->next)
			if (st->waiting && (!first || st->id < first->id))
				first = st;
		if (!first)
			return;
		rpc_prefix_decode(first->body.data + first->body_off, &compressed, &msglen);
		if (!stream_admit(first, msglen))
			return;
	}
}

/* A client-streaming call sending in bulk (its window half full and not
 * paused) gets its window raised towards RPC_STREAM_WINDOW_MAX, for
 * throughput, from the streaming pool: half of the reservation budget, so
 * that large messages of other calls are still admitted, and a streaming
 * call idle for hours (a tunnel) holds nothing beyond its base window
 * unless it has been sending. The grant is given back when the call ends. */
static void stream_grant(struct rpc_stream *st, bool bulk)
{
	struct rpc_server_session *s = st->session;
	size_t pool = s->reserve_budget / 2, want = RPC_STREAM_WINDOW_MAX - RPC_STREAM_WINDOW, g;

	/* Not for a call that takes nothing now (paused, or no receiver set).
	 * In bulk: half its window waiting unread, or (bulk) a message coming
	 * that is larger than the window, or the peer waiting on the window
	 * (stream_receive()). */
	if (st->granted || st->paused || (st->call && !st->on_message) ||
	    (!bulk && st->unconsumed < RPC_STREAM_WINDOW / 2) || s->granted >= pool)
		return;
	g = MIN(want, pool - s->granted);
	if (s->reserved + s->granted + g > s->reserve_budget)
		g = s->reserve_budget > s->reserved + s->granted ? s->reserve_budget - s->reserved - s->granted : 0;
	if (g < RPC_STREAM_WINDOW)
		return;
	int32_t window = (int32_t)(RPC_STREAM_WINDOW + g);
	int r = nghttp2_session_set_local_window_size(s->h2, NGHTTP2_FLAG_NONE, st->id, window);
	if (r != 0) {
		/* nghttp2 may have raised the window without the frame that
		 * tells the peer: its updates would then come too late. */
		window_check(s, r);
		return;
	}
	st->granted = g;
	s->granted += g;
}

/* nghttp2 announces the window given back (WINDOW_UPDATE) only once half
 * the window has been given back. A stream that has delivered less than
 * that and waits for a message of more than the rest of its window (more
 * than half of it, not more than all of it: no reservation) would wait for
 * ever: the peer has sent all the window allows, and what was given back
 * stays unannounced. The given-back bytes are announced at once then, so
 * that the message always fits: the peer may then send the whole window
 * beyond the bytes still buffered, and the message is no larger than
 * that window. Nothing more is buffered than before (at most the window);
 * the cost is one WINDOW_UPDATE of less than half a window now and then. */
static void stream_announce(struct rpc_stream *st)
{
	struct rpc_server_session *s = st->session;
	size_t avail = st->body.len - st->body_off, need;
	int32_t allowed, unannounced;
	bool compressed;
	uint32_t len;

	/* A paused stream waits on purpose; a reserved message's bytes are
	 * given back as they come (halves of the window are announced). */
	if (st->answered || st->request_done || st->paused || (st->call && !st->on_message) || st->reserved ||
	    st->waiting || avail < RPC_PREFIX_SIZE)
		return;
	rpc_prefix_decode(st->body.data + st->body_off, &compressed, &len);
	need = RPC_PREFIX_SIZE + (size_t)len;
	allowed = nghttp2_session_get_stream_local_window_size(s->h2, st->id);
	unannounced = nghttp2_session_get_stream_effective_recv_data_length(s->h2, st->id);
	if (need <= avail || allowed < 0 || unannounced < 0 || need - avail <= (size_t)allowed ||
	    (size_t)unannounced <= st->unconsumed)
		return;
	/* Received and not announced, less what is still buffered: given
	 * back, not yet announced. */
	window_check(s, nghttp2_submit_window_update(s->h2, NGHTTP2_FLAG_NONE, st->id,
						     (int32_t)((size_t)unannounced - st->unconsumed)));
}

/* *ret_disabled: what switched the method off (rpc_service.disabled), or
 * NULL when it is served. */
static const struct rpc_method *find_method(const struct rpc_service *svc, const char *path,
					    const char **ret_disabled)
{
	for (; svc; svc = svc->next)
		for (size_t i = 0; i < svc->n_methods; i++)
			if (strcmp(svc->methods[i].path, path) == 0) {
				*ret_disabled = svc->disabled ? svc->disabled[i] : NULL;
				return &svc->methods[i];
			}
	return NULL;
}

/* Already over (grpc-timeout "1n"): the client has its answer, so the
 * handler must not act on a call nobody waits for. False once answered. */
static bool stream_check_deadline(struct rpc_server_session *s, struct rpc_stream *st)
{
	if (st->deadline > s->now)
		return true;
	stream_reject(st, RPC_DEADLINE_EXCEEDED, "deadline exceeded before the call was dispatched");
	return false;
}

/* The checks made on the request headers as soon as they are in, before
 * any of the body is read: a call that cannot be served is answered now
 * and its body dropped as it comes (never buffered), whatever it holds.
 * Sets st->method, or answers the stream. */
static void stream_check_headers(struct rpc_server_session *s, struct rpc_stream *st)
{
	char msg[RPC_MAX_MESSAGE_TEXT];
	const struct rpc_method *m;
	const char *disabled = NULL;

	if (!stream_check_deadline(s, st))
		return;
	if (!st->post) {
		if (s->reject)
			s->reject(s->peer, st->path, RPC_UNIMPLEMENTED, "only POST is supported", s->reject_userdata);
		(void)submit_trailers_only(s, st, "405", RPC_UNIMPLEMENTED, "only POST is supported");
		return;
	}
	if (!st->content_type_ok) {
		snprintf(msg, sizeof(msg), "unsupported content-type '%s'", st->content_type);
		if (s->reject)
			s->reject(s->peer, st->path, RPC_INVALID_ARGUMENT, msg, s->reject_userdata);
		(void)submit_trailers_only(s, st, "415", RPC_INVALID_ARGUMENT, msg);
		return;
	}
	m = st->path_too_long ? NULL : find_method(s->service, st->path, &disabled);
	if (!m) {
		snprintf(msg, sizeof(msg), "unknown method %.200s%s", st->path, st->path_too_long ? "..." : "");
		stream_reject(st, RPC_UNIMPLEMENTED, msg);
		return;
	}
	if (disabled) {
		/* The method called is named when a whole service was switched off. */
		if (strcmp(disabled, st->path + 1) == 0)
			snprintf(msg, sizeof(msg), "%.200s is disabled on this guest", disabled);
		else
			snprintf(msg, sizeof(msg), "%.100s is disabled on this guest (%.200s called)", disabled,
				 st->path + 1);
		stream_reject(st, RPC_PERMISSION_DENIED, msg);
		return;
	}
	st->method = m;
}

/* The message's encoding can be read; false once the stream is answered. */
static bool stream_check_encoding(struct rpc_stream *st, bool compressed)
{
	char msg[RPC_MAX_MESSAGE_TEXT];

	if (st->bad_encoding[0]) {
		snprintf(msg, sizeof(msg), "grpc-encoding '%s' is not supported (accepted: %s)", st->bad_encoding,
			 RPC_ACCEPT_ENCODING);
		stream_reject(st, RPC_UNIMPLEMENTED, msg);
		return false;
	}
	if (compressed && st->encoding == RPC_ENCODING_IDENTITY) {
		stream_reject(st, RPC_INTERNAL, "compressed message without a grpc-encoding");
		return false;
	}
	return true;
}

/* Inflates a compressed payload under the message size limit (per
 * message); false once the stream is answered. */
static bool stream_inflate(struct rpc_stream *st, const uint8_t **payload, uint32_t *len, uint8_t **ret_inflated)
{
	char msg[RPC_MAX_MESSAGE_TEXT];
	size_t n;
	int r = rpc_inflate(st->encoding, *payload, *len, RPC_MAX_MESSAGE_SIZE, ret_inflated, &n);

	if (r == -E2BIG) {
		snprintf(msg, sizeof(msg), "request message larger than the limit of %u bytes once decompressed",
			 RPC_MAX_MESSAGE_SIZE);
		stream_reject(st, RPC_RESOURCE_EXHAUSTED, msg);
		return false;
	}
	if (r < 0) {
		stream_reject(st, r == -ENOMEM ? RPC_RESOURCE_EXHAUSTED : RPC_INTERNAL,
			      r == -ENOMEM ? "out of memory" : "could not decompress the request message");
		return false;
	}
	*payload = *ret_inflated;
	*len = (uint32_t)n;
	return true;
}

/* The one message of a unary call, checked against its prefix and
 * inflated if compressed: *ret_payload and *ret_len point into the stream's
 * body or at *ret_inflated (the caller's to free). Returns false once the
 * stream has been answered. */
static bool stream_message(struct rpc_stream *st, const uint8_t **ret_payload, uint32_t *ret_len,
			   uint8_t **ret_inflated)
{
	bool compressed;
	uint32_t len;

	if (st->body.len < RPC_PREFIX_SIZE) {
		stream_reject(st, RPC_INTERNAL, st->body.len ? "truncated request message" : "missing request message");
		return false;
	}
	rpc_prefix_decode(st->body.data, &compressed, &len);
	if (!stream_check_encoding(st, compressed))
		return false;
	if (st->body.len < RPC_PREFIX_SIZE + (size_t)len) {
		stream_reject(st, RPC_INTERNAL, "truncated request message");
		return false;
	}
	if (st->body.len > RPC_PREFIX_SIZE + (size_t)len) {
		stream_reject(st, RPC_INTERNAL, "more than one request message in a unary call");
		return false;
	}
	*ret_payload = st->body.data + RPC_PREFIX_SIZE;
	*ret_len = len;
	return !compressed || stream_inflate(st, ret_payload, ret_len, ret_inflated);
}

/* Decodes one request message; NULL once the stream has been answered. */
static ProtobufCMessage *stream_unpack(struct rpc_stream *st, const struct rpc_method *m, const uint8_t *payload,
				       uint32_t len)
{
	char msg[RPC_MAX_MESSAGE_TEXT], field[96];
	ProtobufCMessage *req = protobuf_c_message_unpack(m->input, &rpc_protobuf_allocator, len, payload);

	if (!req) {
		stream_reject(st, RPC_INVALID_ARGUMENT, "could not decode the request message");
		return NULL;
	}
	/* The decoded strings end at the first NUL: refuse instead of acting on
	 * a part of what was sent. */
	if (pb_find_nul_string(m->input, payload, len, field, sizeof(field)) != 0) {
		protobuf_c_message_free_unpacked(req, &rpc_protobuf_allocator);
		snprintf(msg, sizeof(msg), "string field '%s' contains a NUL byte", field);
		stream_reject(st, RPC_INVALID_ARGUMENT, msg);
		return NULL;
	}
	return req;
}

/* Decodes the request; NULL once the stream has been answered. */
static ProtobufCMessage *stream_decode(struct rpc_stream *st, const struct rpc_method *m)
{
	_cleanup_free_ uint8_t *inflated = NULL;
	const uint8_t *payload;
	uint32_t len;

	if (!stream_message(st, &payload, &len, &inflated))
		return NULL;
	return stream_unpack(st, m, payload, len);
}

/* Makes the call and runs its handler with the first request message. */
static void stream_start_call(struct rpc_server_session *s, struct rpc_stream *st, ProtobufCMessage *req)
{
	const struct rpc_method *m = st->method;
	struct rpc_call *c = calloc(1, sizeof(*c));

	if (!c) {
		protobuf_c_message_free_unpacked(req, &rpc_protobuf_allocator);
		stream_reject(st, RPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	*c = (struct rpc_call){ .session = s, .stream = st, .method = m };
	st->call = c;
	s->pending_calls++;
	m->handler(c, req, service_of(s->service, m)->userdata);
	protobuf_c_message_free_unpacked(req, &rpc_protobuf_allocator);
}

static void stream_dispatch(struct rpc_server_session *s, struct rpc_stream *st)
{
	const struct rpc_method *m = st->method;
	ProtobufCMessage *req;

	/* The headers were checked when they came (m is set unless answered);
	 * the deadline may have passed while the body arrived. */
	if (st->answered || !m || !stream_check_deadline(s, st))
		return;
	req = stream_decode(st, m);
	if (!req)
		return;
	stream_release(st);
	stream_start_call(s, st, req);
}

/* A streaming call's next message is larger than what its window lets
 * in at once (its prefix is in, not the rest). The window is raised first
 * (stream_grant, bulk): with 16 KiB in flight each 8 KiB of a large
 * message waited for a WINDOW_UPDATE's round trip (an upload of 128 KiB
 * messages ran at a fifth of the socket's speed). A message that then
 * fits needs nothing more; a larger one is reserved (it comes with the
 * raised window in flight), or waits for the budget: admit_waiting(),
 * whenever a reservation or a grant is given back. A waiting stream
 * whose window has grown since (a grant) waits no longer. */
static void stream_make_room(struct rpc_stream *st, uint32_t len)
{
	size_t need = RPC_PREFIX_SIZE + (size_t)len;

	if (need > stream_window(st))
		stream_grant(st, true);
	if (need <= stream_window(st))
		st->waiting = false;
	else if (!st->waiting && !stream_admit(st, len))
		st->waiting = true;
}

/* The next whole message of a streaming call, checked against its prefix
 * and inflated if compressed: *ret_payload and *ret_len point into the
 * stream's buffer or at *ret_inflated (the caller's to free), *ret_need is
 * what it takes of the buffer. False when there is none yet (room made for
 * a large one if need be) or the stream has been answered. */
static bool stream_peek_message(struct rpc_stream *st, const uint8_t **ret_payload, uint32_t *ret_len,
				uint8_t **ret_inflated, size_t *ret_need)
{
	size_t avail = st->body.len - st->body_off, need;
	bool compressed;
	uint32_t len;
	char msg[RPC_MAX_MESSAGE_TEXT];

	if (avail < RPC_PREFIX_SIZE) {
		if (avail && st->request_done)
			stream_reject(st, RPC_INTERNAL, "truncated request message");
		return false;
	}
	rpc_prefix_decode(st->body.data + st->body_off, &compressed, &len);
	/* Refused as soon as its prefix says so: per message, not per call. */
	if (len > RPC_MAX_MESSAGE_SIZE) {
		snprintf(msg, sizeof(msg), "request message of %u bytes is larger than the limit of %u", len,
			 RPC_MAX_MESSAGE_SIZE);
		stream_reject(st, RPC_RESOURCE_EXHAUSTED, msg);
		return false;
	}
	need = RPC_PREFIX_SIZE + (size_t)len;
	if (avail < need) {
		if (st->request_done)
			stream_reject(st, RPC_INTERNAL, "truncated request message");
		else if (!st->reserved)
			stream_make_room(st, len);
		return false;
	}
	if (!stream_check_encoding(st, compressed))
		return false;
	*ret_payload = st->body.data + st->body_off + RPC_PREFIX_SIZE;
	*ret_len = len;
	*ret_need = need;
	return !compressed || stream_inflate(st, ret_payload, ret_len, ret_inflated);
}

/* An emptied buffer that grew large is given back (idle streams). */
static void stream_trim_body(struct rpc_stream *st)
{
	if (st->body_off == st->body.len && st->body.cap > RPC_BODY_KEEP) {
		body_give_up(st->session, &st->body);
		st->body_off = 0;
	}
}

/* Takes the message peeked (need bytes) off the buffer: its window goes
 * back to the peer, its reservation once it is whole. The buffer's memory
 * stays (a message delivered in place is read from it) until
 * stream_trim_body(). */
static void stream_take_message(struct rpc_stream *st, size_t need)
{
	struct rpc_server_session *s = st->session;

	st->waiting = false;
	st->body_off += need;
	s->buffered -= need;
	st->delivered_total += need;
	if (st->body_off == st->body.len)
		st->body.len = st->body_off = 0;
	stream_consume_to(st, st->delivered_total);
	if (st->reserved && st->delivered_total >= st->reserve_end) {
		s->reserved -= st->reserved;
		st->reserved = 0;
		st->reserve_end = 0;
		admit_waiting(s);
	}
}

/* Delivers the next whole message; false when there is none (yet) or the
 * stream has been answered. */
static bool stream_deliver_next(struct rpc_stream *st)
{
	_cleanup_free_ uint8_t *inflated = NULL;
	const uint8_t *payload, *data;
	ProtobufCMessage *req;
	uint32_t len;
	size_t need, n;

	if (!stream_peek_message(st, &payload, &len, &inflated, &need))
		return false;
	if (st->call && st->on_data && pb_bytes_field(payload, len, st->data_field, &data, &n)) {
		/* Taken first (the callback may pause or end the call), read in
		 * place: the buffer is neither moved nor freed until trimmed. */
		stream_take_message(st, need);
		st->on_data(st->call, data, n, st->recv_userdata);
		stream_trim_body(st);
		return true;
	}
	req = stream_unpack(st, st->method, payload, len);
	if (!req)
		return false;
	stream_take_message(st, need);
	stream_trim_body(st);
	if (!st->call)
		stream_start_call(st->session, st, req);
	else {
		st->on_message(st->call, req, st->recv_userdata);
		protobuf_c_message_free_unpacked(req, &rpc_protobuf_allocator);
	}
	return true;
}

/* Delivers what a client-streaming call has buffered: the first message to
 * the handler, the next ones to the receiver while one is set and not
 * paused, then the half-close. Not reentrant: a receiver set or resumed
 * from inside a callback is seen by the loop. */
static void stream_pump(struct rpc_stream *st)
{
	struct rpc_server_session *s = st->session;

	if (st->pumping)
		return;
	st->pumping = true;
	st->pump_due = false;
	while (!st->answered) {
		if (st->call && (!st->on_message || st->paused))
			break;
		if (!st->call && !stream_check_deadline(s, st))
			break;
		if (!stream_deliver_next(st)) {
			if (st->answered || st->body.len != st->body_off || !st->request_done)
				break;
			if (!st->call && stream_bidirectional(st)) {
				/* Nothing asked, nothing to answer: gRPC's servers end
				 * such a call OK (a reflection client that closes
				 * at once). */
				stream_fail(st, RPC_OK, NULL);
			} else if (!st->call) {
				stream_reject(st, RPC_INVALID_ARGUMENT, "no request message");
			} else if (!st->end_delivered) {
				st->end_delivered = true;
				if (st->on_end)
					st->on_end(st->call, st->recv_userdata);
			}
			break;
		}
	}
	st->pumping = false;
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame, void *user_data)
{
	struct rpc_server_session *s = user_data;
	struct rpc_stream *st;

	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->session = s;
	st->send_high = RPC_SEND_HIGH_WATER;
	st->send_low = RPC_SEND_LOW_WATER;
	st->id = frame->hd.stream_id;
	st->deadline = USEC_INFINITY;
	LIST_PREPEND(s->streams, st);
	nghttp2_session_set_stream_user_data(h2, st->id, st);
	return 0;
}

static bool header_is(const uint8_t *name, size_t namelen, const char *want)
{
	return namelen == strlen(want) && memcmp(name, want, namelen) == 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
		     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
	struct rpc_server_session *s = user_data;
	struct rpc_stream *st = stream_get(s, frame->hd.stream_id);
	uint64_t usec;

	if (!st || frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* request trailers carry nothing we use */
	if (st->headers_too_big)
		return 0;
	st->header_bytes += namelen + valuelen + 32;
	if (st->header_bytes > s->limits.max_header_list_size) {
		/* Not a reset: the client would see INTERNAL "RST_STREAM". */
		st->headers_too_big = true;
		return 0;
	}

	if (header_is(name, namelen, ":path")) {
		if (valuelen >= sizeof(st->path)) {
			st->path_too_long = true;
			valuelen = sizeof(st->path) - 1;
		}
		memcpy(st->path, value, valuelen);
		st->path[valuelen] = 0;
	} else if (header_is(name, namelen, ":method")) {
		st->post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
	} else if (header_is(name, namelen, "content-type")) {
		size_t n = MIN(valuelen, sizeof(st->content_type) - 1);
		memcpy(st->content_type, value, n);
		st->content_type[n] = 0;
		st->content_type_ok =
			(valuelen == 16 && strncasecmp((const char *)value, "application/grpc", 16) == 0) ||
			(valuelen == 22 && strncasecmp((const char *)value, "application/grpc+proto", 22) == 0);
	} else if (header_is(name, namelen, "grpc-encoding")) {
		if (rpc_encoding_parse((const char *)value, valuelen, &st->encoding) < 0)
			snprintf(st->bad_encoding, sizeof(st->bad_encoding), "%.*s", (int)MIN(valuelen, (size_t)24),
				 (const char *)value);
	} else if (header_is(name, namelen, "grpc-timeout")) {
		if (rpc_timeout_parse((const char *)value, valuelen, &usec) == 0)
			st->deadline = s->now + usec;
	}
	return 0;
}

/* A chunk of a client-streaming call's request: buffered within the
 * stream's window (the message bytes of an admitted large message are
 * given back as they come), then delivered as far as the receiver takes. */
static int stream_receive(struct rpc_stream *st, const uint8_t *data, size_t len)
{
	struct rpc_server_session *s = st->session;
	size_t pending = st->body.len - st->body_off;

	/* Delivered bytes leave the front: moved once they outweigh the rest. */
	if (st->body_off && st->body_off >= pending) {
		memmove(st->body.data, st->body.data + st->body_off, pending);
		st->body.len = pending;
		st->body_off = 0;
	}
	body_take_spare(s, st);
	if (buf_append(&st->body, data, len, SIZE_MAX) < 0) {
		stream_reject(st, RPC_RESOURCE_EXHAUSTED, "out of memory");
		return 0;
	}
	s->buffered += len;
	st->rx_total += len;
	st->unconsumed += len;
	/* Nothing announced since the peer sent its whole window: it waits
	 * on the window. A call sending in bulk in messages it takes as they
	 * come (a tree's 1-8 KiB files) never leaves half its window unread,
	 * and each window's worth cost a WINDOW_UPDATE's round trip (4 000
	 * for 46 MB): it is raised as for a large message. */
	int32_t unannounced = nghttp2_session_get_stream_effective_recv_data_length(s->h2, st->id);
	bool stalled = unannounced > 0 && (size_t)unannounced >= stream_window(st);
	if (st->reserve_end > st->consumed_total)
		stream_consume_to(st, MIN(st->rx_total, st->reserve_end));
	stream_pump(st);
	/* After the deliveries: what is left unread decides. */
	if (!st->answered) {
		stream_grant(st, stalled);
		stream_announce(st);
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id, const uint8_t *data,
			 size_t len, void *user_data)
{
	struct rpc_server_session *s = user_data;
	struct rpc_stream *st = stream_get(s, stream_id);
	bool compressed;
	uint32_t msglen;
	int r;

	/* The connection window only paces; the budget is kept per stream. */
	window_check(s, nghttp2_session_consume_connection(s->h2, len));
	if (!st || st->answered) {
		window_check(s, nghttp2_session_consume_stream(s->h2, stream_id, len));
		return 0;
	}
	if (s->buffered + len > s->limits.max_buffered) {
		/* Flow control keeps this from happening. */
		stream_reject(st, RPC_RESOURCE_EXHAUSTED, "too much request data buffered on this connection");
		return 0;
	}
	if (stream_incremental(st))
		return stream_receive(st, data, len);
	body_take_spare(s, st);
	r = buf_append(&st->body, data, len, RPC_PREFIX_SIZE + RPC_MAX_MESSAGE_SIZE);
	if (r == -E2BIG) {
		stream_reject(st, RPC_RESOURCE_EXHAUSTED, "request message larger than 4194304 bytes");
		return 0;
	}
	if (r < 0) {
		stream_reject(st, RPC_RESOURCE_EXHAUSTED, "out of memory");
		return 0;
	}
	s->buffered += len;
	if (st->reserved)
		window_check(s, nghttp2_session_consume_stream(s->h2, stream_id, len));
	else
		st->unconsumed += len;
	if (st->body.len < RPC_PREFIX_SIZE)
		return 0;
	rpc_prefix_decode(st->body.data, &compressed, &msglen);
	/* Refuse an oversized message as soon as its prefix says so. */
	if (msglen > RPC_MAX_MESSAGE_SIZE) {
		char msg[96];
		snprintf(msg, sizeof(msg), "request message of %u bytes is larger than the limit of %u", msglen,
			 RPC_MAX_MESSAGE_SIZE);
		stream_reject(st, RPC_RESOURCE_EXHAUSTED, msg);
		return 0;
	}
	if (st->reserved) {
		if (st->body.len > st->reserved)
			stream_reject(st, RPC_INTERNAL, "more than one request message in a unary call");
		return 0;
	}
	if (!st->waiting && !stream_admit(st, msglen))
		st->waiting = true;
	return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *user_data)
{
	struct rpc_server_session *s = user_data;
	struct rpc_stream *st;

	s->greeted = true;
	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
		return 0;
	st = stream_get(s, frame->hd.stream_id);
	if (!st)
		return 0;
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
		st->request_done = true;
	if (st->headers_too_big && !st->answered) {
		char msg[96];
		snprintf(msg, sizeof(msg), "request headers larger than the limit of %u bytes",
			 s->limits.max_header_list_size);
		stream_reject(st, RPC_RESOURCE_EXHAUSTED, msg);
		return 0;
	}
	if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST && !st->answered)
		stream_check_headers(s, st);
	if (st->request_done) {
		if (stream_incremental(st))
			stream_pump(st);
		else
			stream_dispatch(s, st);
	}
	return 0;
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame, void *user_data)
{
	struct rpc_server_session *s = user_data;
	struct rpc_stream *st;

	/* nghttp2 ends a connection whose peer broke the protocol with a
	 * GOAWAY naming the error, and then just stops wanting to read: kept
	 * here, or the owner could not tell it from a peer that left. */
	if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR && !s->failure[0])
		snprintf(s->failure, sizeof(s->failure), "%s: %.*s", nghttp2_http2_strerror(frame->goaway.error_code),
			 (int)MIN(frame->goaway.opaque_data_len, 96), (const char *)frame->goaway.opaque_data);
	if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	st = stream_get(s, frame->hd.stream_id);
	if (st && st->reset_after_answer) {
		st->reset_after_answer = false;
		/* Unreset, the stream would stay open (and a graceful stop wait
		 * for it): without memory for the RST, give the connection up. */
		if (nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR) != 0)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t stream_id, uint32_t error_code,
			   void *user_data)
{
	struct rpc_server_session *s = user_data;
	struct rpc_stream *st = stream_get(s, stream_id);

	if (!st)
		return 0;
	if (st->call)
		call_cancel(st->call);
	LIST_REMOVE(s->streams, st);
	st->unconsumed = 0; /* a closed stream has no window */
	stream_release(st);
	rpc_outq_clear(&st->out);
	free(st->final_message);
	free(st);
	/* An idle connection holds no buffer. */
	if (!s->streams)
		buf_clear(&s->spare);
	if (s->stream_end)
		s->stream_end(s->stream_end_userdata);
	return 0;
}

/* --- session ------------------------------------------------------------- */

int rpc_server_session_new(const struct rpc_service *svc, const struct rpc_limits *limits, rpc_notify_fn notify,
			   void *notify_userdata, struct rpc_server_session **ret)
{
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	struct rpc_server_session *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->service = svc;
	s->notify = notify;
	s->notify_userdata = notify_userdata;
	if (limits)
		s->limits = *limits;
	else
		rpc_limits_init(&s->limits);
	strcpy(s->peer, "?");
	reset_filter_init(&s->filter);

	if (nghttp2_session_callbacks_new(&cbs) != 0) {
		free(s);
		return -ENOMEM;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);

	if (nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cbs);
		free(s);
		return -ENOMEM;
	}
	nghttp2_option_set_max_send_header_block_length(opt, 16 * 1024);
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	nghttp2_option_set_max_settings(opt, 32);
	/* Request data is bounded by flow control, not by failing calls: a
	 * stream may send RPC_STREAM_WINDOW bytes; once its prefix is in, the
	 * whole message is reserved from the connection's budget and the
	 * window opened for it, or it waits (window shut) until earlier
	 * messages are handed to their handlers. Admitted messages always fit,
	 * so they always complete: no deadlock. Buffered request data stays
	 * within max_buffered: the reservations plus one window per stream. */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	r = nghttp2_session_server_new3(&s->h2, cbs, s, opt, &rpc_nghttp2_mem);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	if (r != 0) {
		free(s);
		return -ENOMEM;
	}

	size_t windows = (size_t)s->limits.max_concurrent_streams * RPC_STREAM_WINDOW;
	s->reserve_budget = s->limits.max_buffered > windows ? s->limits.max_buffered - windows : 0;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->limits.max_concurrent_streams },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, s->limits.max_header_list_size },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, RPC_STREAM_WINDOW },
	};
	if (nghttp2_submit_settings(s->h2, NGHTTP2_FLAG_NONE, iv, ARRAY_SIZE(iv)) != 0 ||
	    nghttp2_session_set_local_window_size(s->h2, NGHTTP2_FLAG_NONE, 0, (int32_t)s->limits.max_buffered) != 0) {
		rpc_server_session_free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

void rpc_server_session_free(struct rpc_server_session *s)
{
	if (!s)
		return;
	/* Deleting the nghttp2 session closes no streams through callbacks:
	 * cancel the calls and free the streams here. */
	while (s->streams) {
		struct rpc_stream *st = s->streams;
		s->streams = st->next;
		if (st->call)
			call_cancel(st->call);
		buf_clear(&st->body);
		rpc_outq_clear(&st->out);
		free(st->final_message);
		free(st);
	}
	buf_clear(&s->spare);
	nghttp2_session_del(s->h2);
	free(s);
}

void rpc_server_session_set_notify(struct rpc_server_session *s, rpc_notify_fn notify, void *userdata)
{
	s->notify = notify;
	s->notify_userdata = userdata;
}

void rpc_server_session_set_reject(struct rpc_server_session *s, rpc_reject_fn fn, void *userdata)
{
	s->reject = fn;
	s->reject_userdata = userdata;
}

void rpc_server_session_set_stream_end(struct rpc_server_session *s, rpc_stream_end_fn fn, void *userdata)
{
	s->stream_end = fn;
	s->stream_end_userdata = userdata;
}

void rpc_server_session_set_peer(struct rpc_server_session *s, const char *desc)
{
	snprintf(s->peer, sizeof(s->peer), "%s", desc);
}

static int feed_h2(const uint8_t *data, size_t len, void *userdata)
{
	struct rpc_server_session *s = userdata;
	ssize_t n = nghttp2_session_mem_recv(s->h2, data, len);

	if (n >= 0)
		return 0;
	if (!s->failure[0])
		snprintf(s->failure, sizeof(s->failure), "%s", nghttp2_strerror((int)n));
	return -EPROTO;
}

int rpc_server_session_feed(struct rpc_server_session *s, const uint8_t *data, size_t len, uint64_t now)
{
	int r;

	s->now = now;
	s->busy++;
	r = reset_filter_feed(&s->filter, data, len, feed_h2, s);
	s->busy--;
	if (s->broken)
		return -ENOMEM;
	return r;
}

/* What was left for pull(): deliveries resumed from outside the session,
 * and writable callbacks owed (not run inside nghttp2's send). */
static void session_run_due(struct rpc_server_session *s)
{
	while (s->pump_due || s->writable_due) {
		s->pump_due = s->writable_due = false;
		for (struct rpc_stream *st = s->streams; st; st = st->next) {
			if (st->pump_due) {
				stream_pump(st);
				stream_announce(st);
			}
			if (st->writable_due) {
				st->writable_due = false;
				if (st->call && st->call->writable)
					st->call->writable(st->call, st->call->writable_userdata);
			}
		}
	}
}

ssize_t rpc_server_session_pull(struct rpc_server_session *s, const uint8_t **ret)
{
	ssize_t n;

	if (s->broken)
		return -ENOMEM;
	s->busy++;
	session_run_due(s);
	n = s->broken ? NGHTTP2_ERR_NOMEM : nghttp2_session_mem_send(s->h2, ret);
	s->busy--;
	if (n < 0) {
		/* nghttp2 may have dropped a frame (no memory): a stream could
		 * wait for ever, so the connection ends here. */
		s->broken = true;
		return n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
	}
	return n;
}

const char *rpc_server_session_failure(const struct rpc_server_session *s)
{
	return s->failure[0] ? s->failure : NULL;
}

bool rpc_server_session_alive(struct rpc_server_session *s)
{
	return rpc_h2_alive(s->h2);
}

uint64_t rpc_server_session_next_deadline(struct rpc_server_session *s)
{
	uint64_t d = USEC_INFINITY;

	for (struct rpc_stream *st = s->streams; st; st = st->next)
		if (!st->answered && st->deadline < d)
			d = st->deadline;
	return d;
}

void rpc_server_session_expire(struct rpc_server_session *s, uint64_t now)
{
	s->now = now;
	s->busy++;
	for (struct rpc_stream *st = s->streams; st; st = st->next) {
		if (st->answered || st->deadline > now)
			continue;
		if (st->responding) {
			/* The messages not yet begun are dropped and the status
			 * follows at once, if the peer's window lets anything
			 * through; behind a shut window it could wait for ever:
			 * the stream is reset then (the client has its own
			 * deadline). */
			if (st->call)
				call_cancel(st->call);
			stream_release(st);
			rpc_outq_drop_unsent(&st->out);
			if (nghttp2_session_get_stream_remote_window_size(s->h2, st->id) > 0 &&
			    nghttp2_session_get_remote_window_size(s->h2) > 0) {
				stream_set_final(s, st, RPC_DEADLINE_EXCEEDED, "deadline exceeded");
				continue;
			}
			rpc_outq_clear(&st->out);
			st->answered = true;
			if (nghttp2_submit_rst_stream(s->h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL) != 0)
				s->broken = true;
			continue;
		}
		stream_fail(st, RPC_DEADLINE_EXCEEDED, "deadline exceeded");
	}
	s->busy--;
}

void rpc_server_session_shutdown(struct rpc_server_session *s)
{
	if (s->shutting_down)
		return;
	s->shutting_down = true;
	/* Without its GOAWAY an idle client would never leave, and a graceful
	 * stop would wait for it: give the connection up instead. */
	if (nghttp2_submit_goaway(s->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->h2),
				  NGHTTP2_NO_ERROR, NULL, 0) != 0)
		s->broken = true;
	session_notify(s);
}

unsigned rpc_server_session_pending_calls(const struct rpc_server_session *s)
{
	return s->pending_calls;
}

size_t rpc_server_session_buffered(const struct rpc_server_session *s)
{
	return s->buffered;
}

bool rpc_server_session_greeted(const struct rpc_server_session *s)
{
	return s->greeted;
}
