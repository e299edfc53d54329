#include "client-session.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/list.h"
#include "base/time-util.h"
#include "rpc/h2.h"
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
	struct rpc_client_call *prev, *next;
};

struct rpc_client_session {
	nghttp2_session *h2;
	struct rpc_client_call *calls;
	unsigned pending;
};

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

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id, const uint8_t *data,
			 size_t len, void *user_data)
{
	struct rpc_client_call *c = nghttp2_session_get_stream_user_data(h2, stream_id);

	if (!c || c->done)
		return 0;
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
	if (c && !c->done)
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

int rpc_client_session_new(struct rpc_client_session **ret)
{
	_cleanup_(callbacks_freep) nghttp2_session_callbacks *cbs = NULL;
	_cleanup_(rpc_client_session_freep) struct rpc_client_session *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	if (nghttp2_session_client_new(&s->h2, cbs, s) != 0)
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

int rpc_client_session_call(struct rpc_client_session *s, const char *path, const ProtobufCMessage *request,
			    uint64_t timeout_usec, rpc_reply_fn fn, void *userdata)
{
	_cleanup_(call_freep) struct rpc_client_call *c = calloc(1, sizeof(*c));
	size_t len = protobuf_c_message_get_packed_size(request);
	char timeout[16];

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
	nghttp2_data_provider prd = { .source.ptr = c, .read_callback = request_read };
	int32_t id = nghttp2_submit_request(s->h2, NULL, nva, n, &prd, c);
	if (id < 0)
		return id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? -EAGAIN : -EIO;
	c->id = id;
	LIST_PREPEND(s->calls, c);
	s->pending++;
	TAKE_PTR(c); /* the session's now */
	return 0;
}

int rpc_client_session_feed(struct rpc_client_session *s, const uint8_t *data, size_t len)
{
	return nghttp2_session_mem_recv(s->h2, data, len) < 0 ? -EPROTO : 0;
}

ssize_t rpc_client_session_pull(struct rpc_client_session *s, const uint8_t **ret)
{
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
