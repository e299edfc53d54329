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
#include "pb/nul-check.h"
#include "rpc/h2.h"
#include "rpc/wire.h"

#define RPC_MAX_PATH 256
/* Flow control (see rpc_server_session_new): what a stream may send before
 * its message is admitted; enough for most requests whole. */
#define RPC_STREAM_WINDOW (16 * 1024)
#define RPC_MAX_MESSAGE_TEXT 512

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
	/* The response has been submitted; further request bytes are dropped. */
	bool answered;
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
	/* Response message with its prefix, and how much was handed out. */
	uint8_t *resp;
	size_t resp_len, resp_off;
	struct rpc_stream *prev, *next;
};

struct rpc_call {
	struct rpc_server_session *session;
	struct rpc_stream *stream;
	const struct rpc_method *method;
	rpc_cancel_fn cancel;
	void *cancel_userdata;
};

struct rpc_server_session {
	nghttp2_session *h2;
	const struct rpc_service *service;
	struct rpc_limits limits;
	rpc_notify_fn notify;
	void *notify_userdata;
	rpc_reject_fn reject;
	void *reject_userdata;
	struct rpc_stream *streams;
	unsigned pending_calls;
	size_t buffered;
	/* Admitted messages' reservations, and their cap. */
	size_t reserved, reserve_budget;
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

static ssize_t response_read(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
			     nghttp2_data_source *source, void *user_data)
{
	struct rpc_stream *st = source->ptr;
	size_t n = MIN(length, st->resp_len - st->resp_off);

	if (st->resp_off + n == st->resp_len) {
		nghttp2_nv trailers[] = { RPC_NV("grpc-status", "0") };
		/* A response without its status is no answer: without memory
		 * for the trailers, reset the stream instead. */
		if (nghttp2_submit_trailer(h2, stream_id, trailers, 1) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		*data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
	}
	memcpy(buf, st->resp + st->resp_off, n);
	st->resp_off += n;
	return (ssize_t)n;
}

static int submit_message(struct rpc_server_session *s, struct rpc_stream *st, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	nghttp2_nv nva[] = {
		RPC_NV(":status", "200"),
		RPC_NV("content-type", "application/grpc"),
		RPC_NV("grpc-accept-encoding", RPC_ACCEPT_ENCODING),
	};
	nghttp2_data_provider prd = { .source.ptr = st, .read_callback = response_read };

	st->resp = malloc(RPC_PREFIX_SIZE + len);
	if (!st->resp)
		return -ENOMEM;
	rpc_prefix_encode(st->resp, false, (uint32_t)len);
	protobuf_c_message_pack(m, st->resp + RPC_PREFIX_SIZE);
	st->resp_len = RPC_PREFIX_SIZE + len;
	st->answered = true;
	return session_check_submit(s, nghttp2_submit_response(s->h2, st->id, nva, ARRAY_SIZE(nva), &prd));
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

void rpc_call_reply(struct rpc_call *c, const ProtobufCMessage *response)
{
	struct rpc_server_session *s = c->session;
	struct rpc_stream *st = c->stream;

	call_detach_and_free(c);
	if (st && submit_message(s, st, response) < 0)
		(void)submit_trailers_only(s, st, "200", RPC_INTERNAL, "could not send the response");
	session_notify(s);
}

void rpc_call_fail(struct rpc_call *c, int code, const char *fmt, ...)
{
	struct rpc_server_session *s = c->session;
	struct rpc_stream *st = c->stream;
	char msg[RPC_MAX_MESSAGE_TEXT];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	call_detach_and_free(c);
	if (st)
		(void)submit_trailers_only(s, st, "200", code, msg);
	session_notify(s);
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
void *rpc_call_service_userdata(const struct rpc_call *c)
{
	return c->session->service->userdata;
}

/* --- request handling ---------------------------------------------------- */

static struct rpc_stream *stream_get(struct rpc_server_session *s, int32_t id)
{
	return nghttp2_session_get_stream_user_data(s->h2, id);
}

static void admit_waiting(struct rpc_server_session *s);

/* The stream's request data is no longer needed: free it, give its
 * reservation back and let waiting streams in. */
static void stream_release(struct rpc_stream *st)
{
	struct rpc_server_session *s = st->session;

	s->buffered -= st->body.len;
	buf_clear(&st->body);
	st->waiting = false;
	if (st->unconsumed) {
		(void)nghttp2_session_consume_stream(s->h2, st->id, st->unconsumed);
		st->unconsumed = 0;
	}
	if (st->reserved) {
		s->reserved -= st->reserved;
		st->reserved = 0;
		admit_waiting(s);
	}
}

static void stream_fail(struct rpc_stream *st, int code, const char *message)
{
	stream_release(st);
	(void)submit_trailers_only(st->session, st, "200", code, message);
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
 * window for it; false when the budget is short (the window stays shut). */
static bool stream_admit(struct rpc_stream *st, uint32_t msglen)
{
	struct rpc_server_session *s = st->session;
	size_t need = RPC_PREFIX_SIZE + (size_t)msglen;

	if (s->reserved + need > s->reserve_budget)
		return false;
	s->reserved += need;
	st->reserved = need;
	st->waiting = false;
	(void)nghttp2_session_consume_stream(s->h2, st->id, st->unconsumed);
	st->unconsumed = 0;
	if (need > RPC_STREAM_WINDOW)
		(void)nghttp2_session_set_local_window_size(s->h2, NGHTTP2_FLAG_NONE, st->id, (int32_t)need);
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
		rpc_prefix_decode(first->body.data, &compressed, &msglen);
		if (!stream_admit(first, msglen))
			return;
	}
}

static const struct rpc_method *find_method(const struct rpc_service *svc, const char *path)
{
	for (size_t i = 0; i < svc->n_methods; i++)
		if (strcmp(svc->methods[i].path, path) == 0)
			return &svc->methods[i];
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
	m = st->path_too_long ? NULL : find_method(s->service, st->path);
	if (!m) {
		snprintf(msg, sizeof(msg), "unknown method %.200s%s", st->path, st->path_too_long ? "..." : "");
		stream_reject(st, RPC_UNIMPLEMENTED, msg);
		return;
	}
	st->method = m;
}

/* The one message of a unary call, checked against its prefix and
 * inflated if compressed: *ret_payload and *ret_len point into the stream's
 * body or at *ret_inflated (the caller's to free). Returns false once the
 * stream has been answered. */
static bool stream_message(struct rpc_stream *st, const uint8_t **ret_payload, uint32_t *ret_len,
			   uint8_t **ret_inflated)
{
	char msg[RPC_MAX_MESSAGE_TEXT];
	bool compressed;
	uint32_t len;
	size_t n;

	if (st->body.len < RPC_PREFIX_SIZE) {
		stream_reject(st, RPC_INTERNAL, st->body.len ? "truncated request message" : "missing request message");
		return false;
	}
	if (st->bad_encoding[0]) {
		snprintf(msg, sizeof(msg), "grpc-encoding '%s' is not supported (accepted: %s)", st->bad_encoding,
			 RPC_ACCEPT_ENCODING);
		stream_reject(st, RPC_UNIMPLEMENTED, msg);
		return false;
	}
	rpc_prefix_decode(st->body.data, &compressed, &len);
	if (compressed && st->encoding == RPC_ENCODING_IDENTITY) {
		stream_reject(st, RPC_INTERNAL, "compressed message without a grpc-encoding");
		return false;
	}
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
	if (!compressed)
		return true;
	int r = rpc_inflate(st->encoding, *ret_payload, len, RPC_MAX_MESSAGE_SIZE, ret_inflated, &n);
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
	*ret_payload = *ret_inflated;
	*ret_len = (uint32_t)n;
	return true;
}

/* Decodes the request; NULL once the stream has been answered. */
static ProtobufCMessage *stream_decode(struct rpc_stream *st, const struct rpc_method *m)
{
	char msg[RPC_MAX_MESSAGE_TEXT], field[96];
	_cleanup_free_ uint8_t *inflated = NULL;
	const uint8_t *payload;
	uint32_t len;

	if (!stream_message(st, &payload, &len, &inflated))
		return NULL;
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

	struct rpc_call *c = calloc(1, sizeof(*c));
	if (!c) {
		protobuf_c_message_free_unpacked(req, &rpc_protobuf_allocator);
		stream_reject(st, RPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	*c = (struct rpc_call){ .session = s, .stream = st, .method = m };
	st->call = c;
	s->pending_calls++;
	m->handler(c, req, s->service->userdata);
	protobuf_c_message_free_unpacked(req, &rpc_protobuf_allocator);
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

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id, const uint8_t *data,
			 size_t len, void *user_data)
{
	struct rpc_server_session *s = user_data;
	struct rpc_stream *st = stream_get(s, stream_id);
	bool compressed;
	uint32_t msglen;
	int r;

	/* The connection window only paces; the budget is kept per stream. */
	(void)nghttp2_session_consume_connection(s->h2, len);
	if (!st || st->answered) {
		(void)nghttp2_session_consume_stream(s->h2, stream_id, len);
		return 0;
	}
	if (s->buffered + len > s->limits.max_buffered) {
		/* Flow control keeps this from happening. */
		stream_reject(st, RPC_RESOURCE_EXHAUSTED, "too much request data buffered on this connection");
		return 0;
	}
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
		(void)nghttp2_session_consume_stream(s->h2, stream_id, len);
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
	if (st->request_done)
		stream_dispatch(s, st);
	return 0;
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame, void *user_data)
{
	struct rpc_server_session *s = user_data;
	struct rpc_stream *st;

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
	free(st->resp);
	free(st);
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
		free(st->resp);
		free(st);
	}
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

void rpc_server_session_set_peer(struct rpc_server_session *s, const char *desc)
{
	snprintf(s->peer, sizeof(s->peer), "%s", desc);
}

int rpc_server_session_feed(struct rpc_server_session *s, const uint8_t *data, size_t len, uint64_t now)
{
	ssize_t n;

	s->now = now;
	s->busy++;
	n = nghttp2_session_mem_recv(s->h2, data, len);
	s->busy--;
	if (s->broken)
		return -ENOMEM;
	return n < 0 ? -EPROTO : 0;
}

ssize_t rpc_server_session_pull(struct rpc_server_session *s, const uint8_t **ret)
{
	ssize_t n;

	if (s->broken)
		return -ENOMEM;
	s->busy++;
	n = nghttp2_session_mem_send(s->h2, ret);
	s->busy--;
	if (n < 0) {
		/* nghttp2 may have dropped a frame (no memory): a stream could
		 * wait for ever, so the connection ends here. */
		s->broken = true;
		return n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
	}
	return n;
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
		if (st->call)
			call_cancel(st->call);
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
