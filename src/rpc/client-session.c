#include "client-session.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/list.h"
#include "base/time-util.h"
#include "rpc/h2.h"
#include "rpc/outq.h"
#include "rpc/wire.h"

struct rpc_client_call {
	struct rpc_client_session *session;
	int32_t id;
	rpc_reply_fn fn;
	void *userdata;
	uint64_t deadline;
	uint8_t *req;
	size_t req_len, req_off;
	int http_status;
	int grpc_status; /* -1 until seen */
	char *grpc_message;
	struct buf body;
	bool done;
	/* Streaming calls: the callbacks, the send queue, the half-close. */
	const struct rpc_client_stream_ops *ops;
	struct rpc_outq out;
	bool closing, deferred, want_writable, writable_due;
	/* body.data[body_off..] is not delivered yet. */
	size_t body_off;
	/* rpc_client_call_pause_receiving(): the response bytes received
	 * since, whose stream window is given back on resume. */
	bool paused;
	size_t unconsumed;
	struct rpc_client_call *prev, *next;
};

/* A streaming call's window for responses, and the connection's once one
 * is made (unary-only sessions keep nghttp2's defaults on the wire). */
#define RPC_CLIENT_STREAM_WINDOW (1024 * 1024)
#define RPC_CLIENT_CONN_WINDOW (16 * 1024 * 1024)

struct rpc_client_session {
	nghttp2_session *h2;
	struct rpc_client_call *calls;
	unsigned pending;
	bool writable_due, conn_window_raised;
	/* Output was queued outside feed/pull (a call made, a message sent):
	 * whoever binds the session to a socket writes it. */
	void (*notify)(void *userdata);
	void *notify_userdata;
};

static void session_notify(struct rpc_client_session *s)
{
	if (s->notify)
		s->notify(s->notify_userdata);
}

static void call_unlink(struct rpc_client_call *c)
{
	struct rpc_client_session *s = c->session;
	LIST_REMOVE(s->calls, c);
}

static void call_free(struct rpc_client_call *c)
{
	if (!c)
		return;
	free(c->req);
	free(c->grpc_message);
	buf_clear(&c->body);
	rpc_outq_clear(&c->out);
	free(c);
}
DEFINE_FREEP(struct rpc_client_call, call_free)

static void callbacks_freep(nghttp2_session_callbacks **cbs)
{
	nghttp2_session_callbacks_del(*cbs);
}

/* Answers the call once; the memory goes with the stream (or now, when the
 * call never got one). */
static void call_finish(struct rpc_client_call *c, int code, const char *message, const uint8_t *data, size_t len)
{
	if (c->done)
		return;
	c->done = true;
	c->session->pending--;
	if (c->ops) {
		/* The body stays until the stream closes: on_message may be
		 * running on it. */
		rpc_outq_clear(&c->out);
		c->ops->on_done(c, code, message ? message : "", c->userdata);
		return;
	}
	c->fn(code, message ? message : "", data, len, c->userdata);
}

static int http_to_grpc(int http)
{
	switch (http) {
	case 400: return RPC_INTERNAL;
	case 401: return RPC_UNAUTHENTICATED;
	case 403: return RPC_PERMISSION_DENIED;
	case 404: return RPC_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504: return RPC_UNAVAILABLE;
	default: return RPC_UNKNOWN;
	}
}

static void call_complete_from_response(struct rpc_client_call *c)
{
	char msg[64];
	bool compressed;
	uint32_t len;

	if (c->grpc_status < 0) {
		snprintf(msg, sizeof(msg), "no grpc-status in the response (HTTP %d)", c->http_status);
		call_finish(c, c->http_status == 200 ? RPC_INTERNAL : http_to_grpc(c->http_status), msg, NULL, 0);
		return;
	}
	if (c->grpc_status != RPC_OK) {
		call_finish(c, c->grpc_status, c->grpc_message, NULL, 0);
		return;
	}
	if (c->body.len < RPC_PREFIX_SIZE) {
		call_finish(c, RPC_INTERNAL, "no response message", NULL, 0);
		return;
	}
	rpc_prefix_decode(c->body.data, &compressed, &len);
	if (compressed) {
		call_finish(c, RPC_INTERNAL, "compressed response", NULL, 0);
		return;
	}
	if (c->body.len != RPC_PREFIX_SIZE + (size_t)len) {
		call_finish(c, RPC_INTERNAL, "malformed response message", NULL, 0);
		return;
	}
	call_finish(c, RPC_OK, NULL, c->body.data + RPC_PREFIX_SIZE, len);
}

/* The end of a streaming call's response. */
static void stream_complete(struct rpc_client_call *c)
{
	char msg[64];

	if (c->grpc_status < 0) {
		snprintf(msg, sizeof(msg), "no grpc-status in the response (HTTP %d)", c->http_status);
		call_finish(c, c->http_status == 200 ? RPC_INTERNAL : http_to_grpc(c->http_status), msg, NULL, 0);
	} else if (c->body.len != c->body_off) {
		call_finish(c, RPC_INTERNAL, "truncated response message", NULL, 0);
	} else {
		call_finish(c, c->grpc_status, c->grpc_message, NULL, 0);
	}
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
		     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
	struct rpc_client_call *c = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
	char tmp[16];

	if (!c || frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
		size_t n = MIN(valuelen, sizeof(tmp) - 1);
		memcpy(tmp, value, n);
		tmp[n] = 0;
		c->http_status = atoi(tmp);
	} else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
		size_t n = MIN(valuelen, sizeof(tmp) - 1);
		memcpy(tmp, value, n);
		tmp[n] = 0;
		c->grpc_status = atoi(tmp);
	} else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
		free(c->grpc_message);
		c->grpc_message = rpc_percent_decode((const char *)value, valuelen);
	}
	return 0;
}

/* Delivers every whole message buffered; false once the call is over. */
static bool stream_deliver(struct rpc_client_call *c)
{
	while (!c->done) {
		size_t avail = c->body.len - c->body_off;
		bool compressed;
		uint32_t len;

		if (avail < RPC_PREFIX_SIZE)
			break;
		rpc_prefix_decode(c->body.data + c->body_off, &compressed, &len);
		if (compressed || len > RPC_MAX_MESSAGE_SIZE) {
			int32_t id = c->id;
			call_finish(c, compressed ? RPC_INTERNAL : RPC_RESOURCE_EXHAUSTED,
				    compressed ? "compressed response" : "response message too large", NULL, 0);
			(void)nghttp2_submit_rst_stream(c->session->h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
			return false;
		}
		if (avail < RPC_PREFIX_SIZE + (size_t)len)
			break;
		c->body_off += RPC_PREFIX_SIZE + (size_t)len;
		c->ops->on_message(c, c->body.data + c->body_off - len, len, c->userdata);
	}
	if (c->done)
		return false;
	if (c->body_off == c->body.len) {
		c->body.len = c->body_off = 0;
		if (c->body.cap > 64 * 1024)
			buf_clear(&c->body);
	}
	return true;
}

static int stream_receive(struct rpc_client_call *c, const uint8_t *data, size_t len)
{
	size_t pending = c->body.len - c->body_off;

	if (c->body_off && c->body_off >= pending) {
		memmove(c->body.data, c->body.data + c->body_off, pending);
		c->body.len = pending;
		c->body_off = 0;
	}
	if (buf_append(&c->body, data, len, SIZE_MAX) < 0) {
		int32_t id = c->id;
		call_finish(c, RPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
		(void)nghttp2_submit_rst_stream(c->session->h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
		return 0;
	}
	(void)stream_deliver(c);
	return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id, const uint8_t *data,
			 size_t len, void *user_data)
{
	struct rpc_client_call *c = nghttp2_session_get_stream_user_data(h2, stream_id);

	/* Windows are given back by hand (a paused streaming call keeps its
	 * stream's): the connection's at once, the stream's now or at the
	 * resume. */
	(void)nghttp2_session_consume_connection(h2, len);
	if (c && !c->done && c->paused)
		c->unconsumed += len;
	else
		(void)nghttp2_session_consume_stream(h2, stream_id, len);
	if (!c || c->done)
		return 0;
	if (c->ops)
		return stream_receive(c, data, len);
	if (buf_append(&c->body, data, len, RPC_PREFIX_SIZE + RPC_MAX_MESSAGE_SIZE) < 0) {
		call_finish(c, RPC_RESOURCE_EXHAUSTED, "response message too large", NULL, 0);
		(void)nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *user_data)
{
	struct rpc_client_call *c;

	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
		return 0;
	if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	c = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
	if (!c || c->done)
		return 0;
	if (c->ops)
		stream_complete(c);
	else
		call_complete_from_response(c);
	return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t stream_id, uint32_t error_code, void *user_data)
{
	struct rpc_client_call *c = nghttp2_session_get_stream_user_data(h2, stream_id);
	char msg[64];

	if (!c)
		return 0;
	if (!c->done) {
		snprintf(msg, sizeof(msg), "stream closed by the server (HTTP/2 error %u)", error_code);
		call_finish(c, error_code == NGHTTP2_REFUSED_STREAM ? RPC_UNAVAILABLE : RPC_INTERNAL, msg, NULL, 0);
	}
	call_unlink(c);
	call_free(c);
	return 0;
}

/* A streaming call's request headers are out (its stream exists now):
 * its window, and the connection's, are raised for throughput. */
static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame, void *user_data)
{
	struct rpc_client_session *s = user_data;
	struct rpc_client_call *c;

	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	c = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
	if (!c || !c->ops)
		return 0;
	if (!s->conn_window_raised &&
	    nghttp2_session_set_local_window_size(h2, NGHTTP2_FLAG_NONE, 0, RPC_CLIENT_CONN_WINDOW) == 0)
		s->conn_window_raised = true;
	(void)nghttp2_session_set_local_window_size(h2, NGHTTP2_FLAG_NONE, c->id, RPC_CLIENT_STREAM_WINDOW);
	return 0;
}

int rpc_client_session_new(struct rpc_client_session **ret)
{
	_cleanup_(callbacks_freep) nghttp2_session_callbacks *cbs = NULL;
	_cleanup_(rpc_client_session_freep) struct rpc_client_session *s = calloc(1, sizeof(*s));
	nghttp2_option *opt;
	int r;

	if (!s)
		return -ENOMEM;
	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	if (nghttp2_option_new(&opt) != 0)
		return -ENOMEM;
	nghttp2_option_set_no_auto_window_update(opt, 1);
	r = nghttp2_session_client_new2(&s->h2, cbs, s, opt);
	nghttp2_option_del(opt);
	if (r != 0)
		return -ENOMEM;
	if (nghttp2_submit_settings(s->h2, NGHTTP2_FLAG_NONE, NULL, 0) != 0)
		return -ENOMEM;
	*ret = TAKE_PTR(s);
	return 0;
}

void rpc_client_session_abort(struct rpc_client_session *s, int code, const char *message)
{
	for (struct rpc_client_call *c = s->calls; c; c = c->next)
		call_finish(c, code, message, NULL, 0);
}

void rpc_client_session_free(struct rpc_client_session *s)
{
	if (!s)
		return;
	rpc_client_session_abort(s, RPC_UNAVAILABLE, "connection closed");
	while (s->calls) {
		struct rpc_client_call *c = s->calls;
		call_unlink(c);
		call_free(c);
	}
	nghttp2_session_del(s->h2);
	free(s);
}

static ssize_t request_read(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length,
			    uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	struct rpc_client_call *c = source->ptr;
	size_t n = MIN(length, c->req_len - c->req_off);

	memcpy(buf, c->req + c->req_off, n);
	c->req_off += n;
	if (c->req_off == c->req_len)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* Sends a call's request headers (its deadline starts now) with read as
 * the data provider of its body, and makes the call the session's. */
static int call_submit(struct rpc_client_session *s, struct rpc_client_call *c, const char *path,
		       uint64_t timeout_usec, nghttp2_data_source_read_callback read)
{
	char timeout[16];

	c->grpc_status = -1;
	c->deadline = timeout_usec ? now_usec() + timeout_usec : USEC_INFINITY;
	nghttp2_nv nva[8] = {
		RPC_NV(":method", "POST"),
		RPC_NV(":scheme", "http"),
		RPC_NV(":path", path),
		RPC_NV(":authority", "localhost"),
		RPC_NV("content-type", "application/grpc"),
		RPC_NV("te", "trailers"),
		RPC_NV("user-agent", "valet-grpc/1"),
	};
	size_t n = 7;
	if (timeout_usec) {
		rpc_timeout_format(timeout_usec, timeout);
		nva[n++] = (nghttp2_nv)RPC_NV("grpc-timeout", timeout);
	}
	nghttp2_data_provider prd = { .source.ptr = c, .read_callback = read };
	int32_t id = nghttp2_submit_request(s->h2, NULL, nva, n, &prd, c);
	if (id < 0)
		return id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? -EAGAIN : -EIO;
	c->id = id;
	LIST_PREPEND(s->calls, c);
	s->pending++;
	session_notify(s);
	return 0;
}

int rpc_client_session_call(struct rpc_client_session *s, const char *path, const ProtobufCMessage *request,
			    uint64_t timeout_usec, rpc_reply_fn fn, void *userdata)
{
	_cleanup_(call_freep) struct rpc_client_call *c = calloc(1, sizeof(*c));
	size_t len = protobuf_c_message_get_packed_size(request);
	int r;

	if (!c)
		return -ENOMEM;
	if (len > RPC_MAX_MESSAGE_SIZE)
		return -E2BIG;
	c->req = malloc(RPC_PREFIX_SIZE + len);
	if (!c->req)
		return -ENOMEM;
	rpc_prefix_encode(c->req, false, (uint32_t)len);
	protobuf_c_message_pack(request, c->req + RPC_PREFIX_SIZE);
	c->req_len = RPC_PREFIX_SIZE + len;
	c->session = s;
	c->fn = fn;
	c->userdata = userdata;
	r = call_submit(s, c, path, timeout_usec, request_read);
	if (r < 0)
		return r;
	TAKE_PTR(c); /* the session's now */
	return 0;
}

static ssize_t stream_read(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
			   nghttp2_data_source *source, void *user_data)
{
	struct rpc_client_call *c = source->ptr;
	size_t n = rpc_outq_read(&c->out, buf, length);

	if (c->want_writable && c->out.bytes < RPC_SEND_LOW_WATER) {
		c->want_writable = false;
		c->writable_due = true;
		c->session->writable_due = true;
	}
	if (c->out.bytes)
		return (ssize_t)n;
	if (c->closing) {
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
		return (ssize_t)n;
	}
	if (n)
		return (ssize_t)n;
	c->deferred = true;
	return NGHTTP2_ERR_DEFERRED;
}

int rpc_client_session_start(struct rpc_client_session *s, const char *path, uint64_t timeout_usec,
			     const struct rpc_client_stream_ops *ops, void *userdata, struct rpc_client_call **ret)
{
	_cleanup_(call_freep) struct rpc_client_call *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->session = s;
	c->ops = ops;
	c->userdata = userdata;
	r = call_submit(s, c, path, timeout_usec, stream_read);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(c); /* the session's; the caller's handle until on_done */
	return 0;
}

static void stream_resume(struct rpc_client_call *c)
{
	if (c->deferred) {
		c->deferred = false;
		(void)nghttp2_session_resume_data(c->session->h2, c->id);
	}
}

int rpc_client_call_send(struct rpc_client_call *c, const ProtobufCMessage *msg)
{
	int r;

	if (c->done || c->closing)
		return -EPIPE;
	r = rpc_outq_push(&c->out, msg);
	if (r < 0)
		return r;
	stream_resume(c);
	session_notify(c->session);
	if (c->out.bytes < RPC_SEND_HIGH_WATER)
		return 0;
	c->want_writable = true;
	return 1;
}

int rpc_client_call_close_send(struct rpc_client_call *c)
{
	if (c->done || c->closing)
		return -EPIPE;
	c->closing = true;
	stream_resume(c);
	session_notify(c->session);
	return 0;
}

void rpc_client_call_pause_receiving(struct rpc_client_call *c)
{
	c->paused = true;
}

void rpc_client_call_resume_receiving(struct rpc_client_call *c)
{
	c->paused = false;
	if (c->done || !c->unconsumed)
		return;
	(void)nghttp2_session_consume_stream(c->session->h2, c->id, c->unconsumed);
	c->unconsumed = 0;
	session_notify(c->session);
}

void rpc_client_call_cancel(struct rpc_client_call *c)
{
	struct rpc_client_session *s = c->session;
	int32_t id = c->id;

	if (c->done)
		return;
	call_finish(c, RPC_CANCELLED, "cancelled", NULL, 0);
	(void)nghttp2_submit_rst_stream(s->h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
	session_notify(s);
}

void rpc_client_session_set_notify(struct rpc_client_session *s, void (*notify)(void *userdata), void *userdata)
{
	s->notify = notify;
	s->notify_userdata = userdata;
}

int rpc_client_session_feed(struct rpc_client_session *s, const uint8_t *data, size_t len)
{
	return nghttp2_session_mem_recv(s->h2, data, len) < 0 ? -EPROTO : 0;
}

ssize_t rpc_client_session_pull(struct rpc_client_session *s, const uint8_t **ret)
{
	/* Writable callbacks owed run here, outside nghttp2's send. */
	while (s->writable_due) {
		s->writable_due = false;
		for (struct rpc_client_call *c = s->calls; c; c = c->next) {
			if (!c->writable_due)
				continue;
			c->writable_due = false;
			if (!c->done && c->ops->on_writable)
				c->ops->on_writable(c, c->userdata);
		}
	}
	ssize_t n = nghttp2_session_mem_send(s->h2, ret);
	return n < 0 ? -EPROTO : n;
}

bool rpc_client_session_alive(struct rpc_client_session *s)
{
	return rpc_h2_alive(s->h2);
}

unsigned rpc_client_session_pending_calls(const struct rpc_client_session *s)
{
	return s->pending;
}

uint64_t rpc_client_session_next_deadline(struct rpc_client_session *s)
{
	uint64_t d = USEC_INFINITY;
	for (struct rpc_client_call *c = s->calls; c; c = c->next)
		if (!c->done && c->deadline < d)
			d = c->deadline;
	return d;
}

void rpc_client_session_expire(struct rpc_client_session *s, uint64_t now)
{
	struct rpc_client_call *c = s->calls, *next;
	for (; c; c = next) {
		next = c->next;
		if (c->done || c->deadline > now)
			continue;
		int32_t id = c->id;
		call_finish(c, RPC_DEADLINE_EXCEEDED, "deadline exceeded", NULL, 0);
		(void)nghttp2_submit_rst_stream(s->h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
	}
}

void rpc_client_session_shutdown(struct rpc_client_session *s)
{
	(void)nghttp2_session_terminate_session(s->h2, NGHTTP2_NO_ERROR);
}
