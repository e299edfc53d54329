#include "h2-peer.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/time-util.h"
#include "rpc/h2.h"
#include "rpc/wire.h"

#define MAX_STREAMS 256

/* Linked in the failmalloc sweeps only (failmalloc.h): the peer's own
 * buffers are not the code under test. */
void failmalloc_hold(bool hold) __attribute__((weak));

static int peer_append(struct buf *b, const uint8_t *data, size_t len)
{
	if (failmalloc_hold)
		failmalloc_hold(true);
	int r = buf_append(b, data, len, SIZE_MAX);
	if (failmalloc_hold)
		failmalloc_hold(false);
	return r;
}

struct h2_peer {
	nghttp2_session *h2;
	struct h2_result results[MAX_STREAMS];
	bool goaway;
	uint32_t goaway_error;
	const char *extra_name, *extra_value;
	/* The clock handed to the server with every chunk (0: the real one). */
	uint64_t now;
	struct {
		const uint8_t *data;
		size_t len, off;
	} bodies[MAX_STREAMS];
	/* Streaming request bodies, by stream slot. */
	struct {
		struct buf out;
		size_t off;
		bool closing, deferred;
	} tx[MAX_STREAMS];
	bool hold;
	size_t held[MAX_STREAMS];
	unsigned window_updates[MAX_STREAMS];
};

static struct h2_result *result_for(struct h2_peer *p, int32_t id)
{
	return id > 0 && (id - 1) / 2 < MAX_STREAMS ? &p->results[(id - 1) / 2] : NULL;
}

struct h2_result *h2_peer_result(struct h2_peer *p, int32_t id)
{
	return result_for(p, id);
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
		     const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	struct h2_result *r = result_for(ud, f->hd.stream_id);
	char v[600];
	(void)h2;
	if (!r)
		return 0;
	snprintf(v, sizeof(v), "%.*s", (int)valuelen, value);
	if (namelen == 7 && !memcmp(name, ":status", 7))
		r->http_status = atoi(v);
	else if (namelen == 11 && !memcmp(name, "grpc-status", 11))
		r->grpc_status = atoi(v);
	else if (namelen == 12 && !memcmp(name, "grpc-message", 12)) {
		char *d = rpc_percent_decode(v, strlen(v));
		snprintf(r->grpc_message, sizeof(r->grpc_message), "%s", d);
		free(d);
	} else if (namelen == 20 && !memcmp(name, "grpc-accept-encoding", 20))
		snprintf(r->accept_encoding, sizeof(r->accept_encoding), "%.63s", v);
	return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
	struct h2_peer *p = ud;
	struct h2_result *r = result_for(ud, id);
	if (r && r->data_len + len <= sizeof(r->data)) {
		memcpy(r->data + r->data_len, data, len);
		r->data_len += len;
	}
	if (r)
		(void)peer_append(&r->all, data, len);
	if (p->hold && r)
		p->held[(id - 1) / 2] += len;
	else
		nghttp2_session_consume(h2, id, len);
	return 0;
}

static int on_close(nghttp2_session *h2, int32_t id, uint32_t code, void *ud)
{
	struct h2_result *r = result_for(ud, id);
	(void)h2;
	if (r) {
		r->closed = true;
		r->rst_code = code;
	}
	return 0;
}

static int on_frame(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
	struct h2_peer *p = ud;
	(void)h2;
	if (f->hd.type == NGHTTP2_WINDOW_UPDATE && f->hd.stream_id > 0 && (f->hd.stream_id - 1) / 2 < MAX_STREAMS)
		p->window_updates[(f->hd.stream_id - 1) / 2]++;
	if (f->hd.type == NGHTTP2_GOAWAY) {
		p->goaway = true;
		p->goaway_error = f->goaway.error_code;
	}
	return 0;
}

struct h2_peer *h2_peer_new(void)
{
	struct h2_peer *p = calloc(1, sizeof(*p));
	nghttp2_session_callbacks *cbs;

	nghttp2_session_callbacks_new(&cbs);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame);
	nghttp2_option *opt;
	nghttp2_option_new(&opt);
	/* Acknowledged as read in on_data, unless held (h2_peer_hold_reads). */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_session_client_new2(&p->h2, cbs, p, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	for (int i = 0; i < MAX_STREAMS; i++)
		p->results[i].grpc_status = -1;
	nghttp2_submit_settings(p->h2, NGHTTP2_FLAG_NONE, NULL, 0);
	return p;
}

void h2_peer_free(struct h2_peer *p)
{
	nghttp2_session_del(p->h2);
	for (int i = 0; i < MAX_STREAMS; i++) {
		buf_clear(&p->results[i].all);
		buf_clear(&p->tx[i].out);
	}
	free(p);
}

static int next_body;

/* The data source holds the body slot, and 0x1000 for "keep the stream open". */
static ssize_t body_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct h2_peer *p = ud;
	int v = (int)(intptr_t)src->ptr, idx = v & 0xfff;
	size_t n = p->bodies[idx].len - p->bodies[idx].off;
	(void)h2;
	if (n > length)
		n = length;
	if (n)
		memcpy(buf, p->bodies[idx].data + p->bodies[idx].off, n);
	p->bodies[idx].off += n;
	if (p->bodies[idx].off == p->bodies[idx].len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (v & 0x1000)
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
	}
	return (ssize_t)n;
}

size_t h2_grpc_frame(uint8_t *out, const uint8_t *msg, size_t len, bool compressed)
{
	rpc_prefix_encode(out, compressed, (uint32_t)len);
	if (len)
		memcpy(out + 5, msg, len);
	return len + 5;
}

int32_t h2_peer_request(struct h2_peer *p, const char *path, const char *content_type, const uint8_t *body, size_t len,
			const char *timeout, bool end_stream)
{
	nghttp2_nv nva[8] = {
		RPC_NV(":method", "POST"),    RPC_NV(":scheme", "http"), RPC_NV(":path", path),
		RPC_NV(":authority", "test"), RPC_NV("te", "trailers"),
	};
	size_t n = 5;
	if (content_type)
		nva[n++] = (nghttp2_nv)RPC_NV("content-type", content_type);
	if (timeout)
		nva[n++] = (nghttp2_nv)RPC_NV("grpc-timeout", timeout);
	if (p->extra_name)
		nva[n++] = (nghttp2_nv)RPC_NV(p->extra_name, p->extra_value);
	int idx = next_body++ % MAX_STREAMS;
	p->bodies[idx].data = body;
	p->bodies[idx].len = len;
	p->bodies[idx].off = 0;
	nghttp2_data_provider prd = { .source.ptr = (void *)(intptr_t)(idx | (end_stream ? 0 : 0x1000)),
				      .read_callback = body_read };
	return nghttp2_submit_request(p->h2, NULL, nva, n, (body || !end_stream) ? &prd : NULL, NULL);
}

void h2_peer_set_header(struct h2_peer *p, const char *name, const char *value)
{
	p->extra_name = name;
	p->extra_value = value;
}

int h2_peer_send(struct h2_peer *p, int32_t id, const uint8_t *body, size_t len, bool end_stream)
{
	int idx = next_body++ % MAX_STREAMS;
	p->bodies[idx].data = body;
	p->bodies[idx].len = len;
	p->bodies[idx].off = 0;
	nghttp2_data_provider prd = { .source.ptr = (void *)(intptr_t)(idx | (end_stream ? 0 : 0x1000)),
				      .read_callback = body_read };
	return nghttp2_submit_data(p->h2, end_stream ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, id, &prd);
}

void h2_peer_set_clock(struct h2_peer *p, uint64_t now)
{
	p->now = now;
}

void h2_peer_reset(struct h2_peer *p, int32_t id)
{
	nghttp2_submit_rst_stream(p->h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
}

void (*h2_pump_hook)(struct rpc_server_session *s);
struct buf *h2_pump_capture;

int h2_pump(struct h2_peer *p, struct rpc_server_session *s)
{
	int last = 0;
	for (int round = 0; round < 100000; round++) {
		bool moved = false;
		const uint8_t *data;
		ssize_t n;
		while ((n = nghttp2_session_mem_send(p->h2, &data)) > 0) {
			moved = true;
			last = rpc_server_session_feed(s, data, (size_t)n, p->now ? p->now : now_usec());
			if (h2_pump_hook)
				h2_pump_hook(s);
			if (last < 0)
				return last;
		}
		while ((n = rpc_server_session_pull(s, &data)) > 0) {
			moved = true;
			if (h2_pump_capture)
				peer_append(h2_pump_capture, data, (size_t)n);
			nghttp2_session_mem_recv(p->h2, data, (size_t)n);
		}
		if (!moved)
			break;
	}
	return last;
}

bool h2_peer_goaway(struct h2_peer *p, uint32_t *ret_error)
{
	if (p->goaway && ret_error)
		*ret_error = p->goaway_error;
	return p->goaway;
}

static ssize_t tx_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
		       nghttp2_data_source *src, void *ud)
{
	struct h2_peer *p = ud;
	int i = (id - 1) / 2;
	size_t n = p->tx[i].out.len - p->tx[i].off;
	if (n > length)
		n = length;
	if (n)
		memcpy(buf, p->tx[i].out.data + p->tx[i].off, n);
	p->tx[i].off += n;
	if (p->tx[i].off == p->tx[i].out.len) {
		if (p->tx[i].closing)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		else if (n == 0) {
			p->tx[i].deferred = true;
			return NGHTTP2_ERR_DEFERRED;
		}
	}
	return (ssize_t)n;
}

int32_t h2_peer_start(struct h2_peer *p, const char *path, const char *timeout)
{
	nghttp2_nv nva[8] = {
		RPC_NV(":method", "POST"),    RPC_NV(":scheme", "http"), RPC_NV(":path", path),
		RPC_NV(":authority", "test"), RPC_NV("te", "trailers"),	 RPC_NV("content-type", "application/grpc"),
	};
	size_t n = 6;
	if (timeout)
		nva[n++] = (nghttp2_nv)RPC_NV("grpc-timeout", timeout);
	if (p->extra_name)
		nva[n++] = (nghttp2_nv)RPC_NV(p->extra_name, p->extra_value);
	nghttp2_data_provider prd = { .read_callback = tx_read };
	int32_t id = nghttp2_submit_request(p->h2, NULL, nva, n, &prd, NULL);
	if (id > 0) {
		int i = (id - 1) / 2;
		buf_clear(&p->tx[i].out);
		p->tx[i].off = 0;
		p->tx[i].closing = p->tx[i].deferred = false;
	}
	return id;
}

static void tx_resume(struct h2_peer *p, int32_t id)
{
	int i = (id - 1) / 2;
	if (p->tx[i].deferred) {
		p->tx[i].deferred = false;
		nghttp2_session_resume_data(p->h2, id);
	}
}

void h2_peer_send_msg(struct h2_peer *p, int32_t id, const uint8_t *msg, size_t len, bool compressed)
{
	uint8_t prefix[5];
	int i = (id - 1) / 2;
	/* Delivered bytes leave the front once they outweigh the rest. */
	if (p->tx[i].off && p->tx[i].off >= p->tx[i].out.len - p->tx[i].off) {
		buf_consume(&p->tx[i].out, p->tx[i].off);
		p->tx[i].off = 0;
	}
	rpc_prefix_encode(prefix, compressed, (uint32_t)len);
	peer_append(&p->tx[i].out, prefix, 5);
	peer_append(&p->tx[i].out, msg, len);
	tx_resume(p, id);
}

void h2_peer_close_send(struct h2_peer *p, int32_t id)
{
	p->tx[(id - 1) / 2].closing = true;
	tx_resume(p, id);
}

size_t h2_peer_unsent(struct h2_peer *p, int32_t id)
{
	int i = (id - 1) / 2;
	return p->tx[i].out.len - p->tx[i].off;
}

unsigned h2_peer_window_updates(struct h2_peer *p, int32_t id)
{
	return p->window_updates[(id - 1) / 2];
}

void h2_peer_hold_reads(struct h2_peer *p, bool hold)
{
	p->hold = hold;
	if (hold)
		return;
	for (int i = 0; i < MAX_STREAMS; i++)
		if (p->held[i]) {
			nghttp2_session_consume(p->h2, 2 * i + 1, p->held[i]);
			p->held[i] = 0;
		}
}

bool h2_result_message(struct h2_result *r, size_t n, const uint8_t **ret, size_t *ret_len)
{
	size_t off = 0;
	for (;;) {
		bool compressed;
		uint32_t len;
		if (r->all.len - off < 5)
			return false;
		rpc_prefix_decode(r->all.data + off, &compressed, &len);
		if (r->all.len - off - 5 < len)
			return false;
		if (n-- == 0) {
			*ret = r->all.data + off + 5;
			*ret_len = len;
			return true;
		}
		off += 5 + (size_t)len;
	}
}

size_t h2_result_messages(struct h2_result *r)
{
	const uint8_t *d;
	size_t len, n = 0;
	while (h2_result_message(r, n, &d, &len))
		n++;
	return n;
}
