/* The gRPC server core, fed by a real HTTP/2 client (nghttp2) and by raw
 * bytes: framing, limits, statuses, deadlines, cancellation. */
#include <nghttp2/nghttp2.h>
#include <unistd.h>
#include <zlib.h>

#include "base/time-util.h"
#include "guest.pb-c.h"
#include "h2-peer.h"
#include "rpc/client-session.h"
#include "rpc/server-session.h"
#include "rpc/wire.h"
#include "test.h"

/* --- a service for the tests -------------------------------------------- */

static struct rpc_call *deferred[200];
static int n_deferred, n_cancelled, n_notified;

static void h_mount(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	const VmTools__MountRequest *req = (const VmTools__MountRequest *)request;
	VmTools__MountResponse resp = VM_TOOLS__MOUNT_RESPONSE__INIT;
	if (strcmp(req->source, "fail") == 0) {
		rpc_call_fail(call, RPC_FAILED_PRECONDITION, "bad\n100%% \xc3\xbc");
		return;
	}
	resp.error = (int32_t)strlen(req->source);
	rpc_call_reply(call, &resp.base);
}

static void on_cancel(struct rpc_call *call, void *ud)
{
	for (int i = 0; i < n_deferred; i++)
		if (deferred[i] == call)
			deferred[i] = NULL;
	n_cancelled++;
}

static void h_defer(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	rpc_call_set_cancel(call, on_cancel, NULL);
	deferred[n_deferred++] = call;
}

static const struct rpc_method methods[] = {
	{ "/t.S/Mount", &vm_tools__mount_request__descriptor, h_mount },
	{ "/t.S/Defer", &vm_tools__launch_process_request__descriptor, h_defer },
};
static const struct rpc_service service = { methods, 2, NULL };

static void notify(void *ud)
{
	n_notified++;
}

static struct rpc_server_session *new_session(void)
{
	struct rpc_server_session *s;
	n_deferred = n_cancelled = n_notified = 0;
	if (rpc_server_session_new(&service, NULL, notify, NULL, &s) < 0)
		return NULL;
	return s;
}

/* A MountRequest with the given source, framed. */
static size_t mount_body(uint8_t *out, const char *source)
{
	VmTools__MountRequest req = VM_TOOLS__MOUNT_REQUEST__INIT;
	uint8_t msg[256];
	req.source = (char *)source;
	size_t len = vm_tools__mount_request__pack(&req, msg);
	return h2_grpc_frame(out, msg, len, false);
}

/* The largest MountRequest allowed (RPC_MAX_MESSAGE_SIZE: a source of
 * 4 MiB - 5 bytes of 'x', plus the field tag and a 4-byte length varint),
 * framed; malloc'ed. */
static uint8_t *largest_mount_body(size_t *ret_len)
{
	VmTools__MountRequest req = VM_TOOLS__MOUNT_REQUEST__INIT;
	size_t slen = RPC_MAX_MESSAGE_SIZE - 5;
	_cleanup_free_ char *src = malloc(slen + 1);
	if (!src)
		return NULL;
	memset(src, 'x', slen);
	src[slen] = 0;
	req.source = src;
	size_t mlen = vm_tools__mount_request__get_packed_size(&req);
	uint8_t *body = malloc(mlen + 5);
	if (!body)
		return NULL;
	rpc_prefix_encode(body, false, (uint32_t)mlen);
	vm_tools__mount_request__pack(&req, body + 5);
	*ret_len = mlen + 5;
	return body;
}

/* --- cases ------------------------------------------------------------- */

TEST(unary_ok)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[300];
	size_t n = mount_body(body, "abc");
	int32_t id = h2_peer_request(p, "/t.S/Mount", "application/grpc", body, n, NULL, true);
	CHECK_EQ(h2_pump(p, s), 0);
	struct h2_result *r = h2_peer_result(p, id);
	CHECK_EQ(r->http_status, 200);
	CHECK_EQ(r->grpc_status, 0);
	CHECK(r->closed);
	/* 5-byte prefix + MountResponse{error: 3} = 08 06 (zigzag). */
	CHECK_EQ(r->data_len, 7);
	CHECK(memcmp(r->data, "\x00\x00\x00\x00\x02\x08\x06", 7) == 0);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
}

TEST(content_type_grpc_proto_accepted)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[300];
	size_t n = mount_body(body, "a");
	int32_t id = h2_peer_request(p, "/t.S/Mount", "application/grpc+proto", body, n, NULL, true);
	h2_pump(p, s);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, 0);
}

static struct h2_result *one_call(struct rpc_server_session *s, struct h2_peer *p, const char *path, const char *ctype,
				  const uint8_t *body, size_t n, const char *timeout)
{
	int32_t id = h2_peer_request(p, path, ctype, body, n, timeout, true);
	h2_pump(p, s);
	return h2_peer_result(p, id);
}

TEST(unknown_method_is_unimplemented)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[300];
	size_t n = mount_body(body, "a");
	struct h2_result *r = one_call(s, p, "/t.S/Nope", "application/grpc", body, n, NULL);
	CHECK_EQ(r->http_status, 200);
	CHECK_EQ(r->grpc_status, RPC_UNIMPLEMENTED);
	CHECK_STR(r->grpc_message, "unknown method /t.S/Nope");
	r = one_call(s, p, "/other.Service/Mount", "application/grpc", body, n, NULL);
	CHECK_EQ(r->grpc_status, RPC_UNIMPLEMENTED);
	/* Still serving. */
	r = one_call(s, p, "/t.S/Mount", "application/grpc", body, n, NULL);
	CHECK_EQ(r->grpc_status, 0);
}

TEST(bad_content_type_is_415)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[300];
	size_t n = mount_body(body, "a");
	struct h2_result *r = one_call(s, p, "/t.S/Mount", "application/json", body, n, NULL);
	CHECK_EQ(r->http_status, 415);
	CHECK_EQ(r->grpc_status, RPC_INVALID_ARGUMENT);
	r = one_call(s, p, "/t.S/Mount", NULL, body, n, NULL);
	CHECK_EQ(r->http_status, 415);
}

/* A MountRequest with the given source, compressed (zlib windowBits: 31
 * gzip, 15 deflate) and framed with the compressed flag. */
static size_t mount_body_compressed(uint8_t *out, size_t cap, const char *source, int wbits)
{
	VmTools__MountRequest req = VM_TOOLS__MOUNT_REQUEST__INIT;
	req.source = (char *)source;
	size_t len = vm_tools__mount_request__get_packed_size(&req);
	uint8_t *msg = malloc(len);
	vm_tools__mount_request__pack(&req, msg);
	z_stream z = { 0 };
	deflateInit2(&z, 9, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY);
	z.next_in = msg;
	z.avail_in = (uInt)len;
	z.next_out = out + 5;
	z.avail_out = (uInt)(cap - 5);
	deflate(&z, Z_FINISH);
	size_t zlen = z.total_out;
	deflateEnd(&z);
	free(msg);
	rpc_prefix_encode(out, true, (uint32_t)zlen);
	return zlen + 5;
}

TEST(gzip_and_deflate_requests_are_accepted)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	static uint8_t body[4096];
	static char src[3001];
	memset(src, 's', 3000);
	const char *names[] = { "gzip", "deflate" };
	const int wbits[] = { 31, 15 };
	for (int k = 0; k < 2; k++) {
		size_t n = mount_body_compressed(body, sizeof(body), src, wbits[k]);
		CHECK(n < 200);
		h2_peer_set_header(p, "grpc-encoding", names[k]);
		struct h2_result *r = one_call(s, p, "/t.S/Mount", "application/grpc", body, n, NULL);
		CHECK_EQ(r->grpc_status, 0);
		/* MountResponse{error: 3000} = 08 f0 2e (zigzag varint). */
		CHECK_EQ(r->data_len, 8);
		CHECK(memcmp(r->data + 5, "\x08\xf0\x2e", 3) == 0);
		CHECK_STR(r->accept_encoding, "identity,deflate,gzip");
	}
}

TEST(every_response_advertises_accept_encoding)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[300];
	size_t n = mount_body(body, "a");
	CHECK_STR(one_call(s, p, "/t.S/Mount", "application/grpc", body, n, NULL)->accept_encoding,
		  "identity,deflate,gzip");
	CHECK_STR(one_call(s, p, "/t.S/Nope", "application/grpc", body, n, NULL)->accept_encoding,
		  "identity,deflate,gzip");
	n = mount_body(body, "fail");
	CHECK_STR(one_call(s, p, "/t.S/Mount", "application/grpc", body, n, NULL)->accept_encoding,
		  "identity,deflate,gzip");
}

TEST(unknown_encoding_is_unimplemented)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[300];
	size_t n = mount_body(body, "a");
	h2_peer_set_header(p, "grpc-encoding", "snappy");
	struct h2_result *r = one_call(s, p, "/t.S/Mount", "application/grpc", body, n, NULL);
	CHECK_EQ(r->grpc_status, RPC_UNIMPLEMENTED);
	CHECK_STR(r->grpc_message, "grpc-encoding 'snappy' is not supported (accepted: identity,deflate,gzip)");
	CHECK_STR(r->accept_encoding, "identity,deflate,gzip");
	/* The compressed flag without any grpc-encoding breaks the spec. */
	h2_peer_set_header(p, NULL, NULL);
	body[0] = 1;
	r = one_call(s, p, "/t.S/Mount", "application/grpc", body, n, NULL);
	CHECK_EQ(r->grpc_status, RPC_INTERNAL);
	CHECK(strstr(r->grpc_message, "grpc-encoding"));
	/* Corrupt gzip data. */
	h2_peer_set_header(p, "grpc-encoding", "gzip");
	r = one_call(s, p, "/t.S/Mount", "application/grpc", body, n, NULL);
	CHECK_EQ(r->grpc_status, RPC_INTERNAL);
	CHECK_STR(r->grpc_message, "could not decompress the request message");
}

TEST(decompressed_size_limit_is_enforced)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	/* A source of 4 MiB of 'x': the message passes the limit only once
	 * inflated (it compresses to a few KiB). */
	size_t slen = RPC_MAX_MESSAGE_SIZE;
	char *src = malloc(slen + 1);
	memset(src, 'x', slen);
	src[slen] = 0;
	static uint8_t body[64 * 1024];
	size_t n = mount_body_compressed(body, sizeof(body), src, 31);
	CHECK(n < 16 * 1024);
	h2_peer_set_header(p, "grpc-encoding", "gzip");
	struct h2_result *r = one_call(s, p, "/t.S/Mount", "application/grpc", body, n, NULL);
	CHECK_EQ(r->grpc_status, RPC_RESOURCE_EXHAUSTED);
	CHECK_STR(r->grpc_message, "request message larger than the limit of 4194304 bytes once decompressed");
	/* 4 MiB - 5 of 'x' is a message of exactly 4 MiB: accepted. */
	src[slen - 5] = 0;
	n = mount_body_compressed(body, sizeof(body), src, 31);
	r = one_call(s, p, "/t.S/Mount", "application/grpc", body, n, NULL);
	CHECK_EQ(r->grpc_status, 0);
	free(src);
}

TEST(oversized_message_is_resource_exhausted_early)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	static uint8_t body[1000];
	/* The prefix announces 4 MiB + 1; only a little follows, and the
	 * stream stays open: the server must not wait for the rest. */
	rpc_prefix_encode(body, false, RPC_MAX_MESSAGE_SIZE + 1);
	int32_t id = h2_peer_request(p, "/t.S/Mount", "application/grpc", body, sizeof(body), NULL, false);
	h2_pump(p, s);
	struct h2_result *r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, RPC_RESOURCE_EXHAUSTED);
	CHECK(r->closed);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
	/* Exactly at the limit is fine as far as the size goes (it is not a
	 * valid MountRequest, so it fails decoding instead). */
}

TEST(message_at_limit_is_accepted)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	size_t len;
	_cleanup_free_ uint8_t *body = largest_mount_body(&len);
	CHECK(body);
	CHECK_EQ(len, RPC_MAX_MESSAGE_SIZE + 5);
	struct h2_result *r = one_call(s, p, "/t.S/Mount", "application/grpc", body, len, NULL);
	CHECK_EQ(r->grpc_status, 0);
}

static size_t max_buffered_seen;
static void track_buffered(struct rpc_server_session *s)
{
	size_t b = rpc_server_session_buffered(s);
	if (b > max_buffered_seen)
		max_buffered_seen = b;
}

/* More 4 MiB messages at once than the 16 MiB budget holds: flow control
 * makes them wait, and every one succeeds. */
TEST(sixteen_4mib_requests_all_succeed_within_the_bound)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	size_t len;
	_cleanup_free_ uint8_t *body = largest_mount_body(&len);
	CHECK(body);
	int32_t ids[16];
	for (int i = 0; i < 16; i++)
		ids[i] = h2_peer_request(p, "/t.S/Mount", "application/grpc", body, len, NULL, true);
	max_buffered_seen = 0;
	h2_pump_hook = track_buffered;
	h2_pump(p, s);
	h2_pump_hook = NULL;
	for (int i = 0; i < 16; i++) {
		struct h2_result *r = h2_peer_result(p, ids[i]);
		CHECK_EQ(r->grpc_status, 0);
		CHECK(r->closed);
	}
	CHECK(max_buffered_seen > RPC_MAX_MESSAGE_SIZE);
	CHECK(max_buffered_seen <= 16 * 1024 * 1024);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
}

/* An unknown method is answered from its headers, before its body: with
 * several messages it is still UNIMPLEMENTED (not "more than one request
 * message"), and a large body is dropped as it comes, never buffered. */
TEST(unknown_method_is_decided_from_the_headers)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t one[300], two[300];
	size_t n1 = mount_body(one, "a"), n2 = mount_body(two, "b");

	/* A client stream: each message in DATA frames of its own (once the
	 * answer is in, the peer's stream is gone and sending fails). */
	int32_t id = h2_peer_request(p, "/t.S/Nope", "application/grpc", one, n1, NULL, false);
	h2_pump(p, s);
	if (h2_peer_send(p, id, two, n2, false) == 0)
		h2_pump(p, s);
	if (h2_peer_send(p, id, one, n1, true) == 0)
		h2_pump(p, s);
	struct h2_result *r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, RPC_UNIMPLEMENTED);
	CHECK_STR(r->grpc_message, "unknown method /t.S/Nope");

	/* Headers alone, the stream left open: the answer does not wait. */
	id = h2_peer_request(p, "/t.S/Nope", "application/grpc", NULL, 0, NULL, false);
	h2_pump(p, s);
	r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, RPC_UNIMPLEMENTED);
	CHECK(r->closed);

	/* A 4 MiB message to an unknown method: nothing of it is held. */
	size_t len;
	_cleanup_free_ uint8_t *body = largest_mount_body(&len);
	CHECK(body);
	id = h2_peer_request(p, "/t.S/Nope", "application/grpc", body, len, NULL, true);
	max_buffered_seen = 0;
	h2_pump_hook = track_buffered;
	h2_pump(p, s);
	h2_pump_hook = NULL;
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, RPC_UNIMPLEMENTED);
	CHECK_EQ(max_buffered_seen, 0);
	/* Still serving. */
	CHECK_EQ(one_call(s, p, "/t.S/Mount", "application/grpc", one, n1, NULL)->grpc_status, 0);
}

static int n_rejected;
static int last_rejected_code;
static void count_reject(const char *peer, const char *path, int code, const char *message, void *ud)
{
	n_rejected++;
	last_rejected_code = code;
}

/* A switched-off method (rpc_service.disabled) is refused from its
 * headers: PERMISSION_DENIED naming it, the reject callback told, a 4 MiB
 * body dropped as it comes (never buffered), the other methods served. */
TEST(disabled_method_is_refused_from_the_headers)
{
	static const char *const off[] = { NULL, "t.S/Defer" };
	static const char *const all_off[] = { "t.S", "t.S" };
	const struct rpc_service svc = { .methods = methods, .n_methods = 2, .disabled = off };
	const struct rpc_service svc_all = { .methods = methods, .n_methods = 2, .disabled = all_off };
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = NULL;
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s_all = NULL;
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	_cleanup_(h2_peer_freep) struct h2_peer *p_all = h2_peer_new();
	uint8_t one[300];
	size_t n1 = mount_body(one, "a"), len;

	CHECK_EQ(rpc_server_session_new(&svc, NULL, notify, NULL, &s), 0);
	rpc_server_session_set_reject(s, count_reject, NULL);
	n_rejected = 0;
	_cleanup_free_ uint8_t *body = largest_mount_body(&len);
	CHECK(body);
	int32_t id = h2_peer_request(p, "/t.S/Defer", "application/grpc", body, len, NULL, true);
	max_buffered_seen = 0;
	h2_pump_hook = track_buffered;
	h2_pump(p, s);
	h2_pump_hook = NULL;
	struct h2_result *r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, RPC_PERMISSION_DENIED);
	CHECK_STR(r->grpc_message, "t.S/Defer is disabled on this guest");
	CHECK_EQ(max_buffered_seen, 0);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
	CHECK_EQ(n_deferred, 0);
	CHECK_EQ(n_rejected, 1);
	CHECK_EQ(last_rejected_code, RPC_PERMISSION_DENIED);
	/* The other method is still served. */
	CHECK_EQ(one_call(s, p, "/t.S/Mount", "application/grpc", one, n1, NULL)->grpc_status, 0);

	/* The whole service: the refusal names it and the method called. */
	CHECK_EQ(rpc_server_session_new(&svc_all, NULL, notify, NULL, &s_all), 0);
	r = one_call(s_all, p_all, "/t.S/Mount", "application/grpc", one, n1, NULL);
	CHECK_EQ(r->grpc_status, RPC_PERMISSION_DENIED);
	CHECK_STR(r->grpc_message, "t.S is disabled on this guest (t.S/Mount called)");
}

/* The session reads no clock: deadlines follow the one given with the
 * bytes, so a fake clock drives them exactly. */
TEST(deadlines_follow_the_clock_given)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	const uint64_t t0 = 5 * USEC_PER_SEC; /* far from the real clock */
	uint8_t body[300];
	size_t n = h2_grpc_frame(body, NULL, 0, false);

	h2_peer_set_clock(p, t0);
	int32_t id = h2_peer_request(p, "/t.S/Defer", "application/grpc", body, n, "20m", true);
	h2_pump(p, s);
	CHECK_EQ(n_deferred, 1);
	CHECK_EQ(rpc_server_session_next_deadline(s), t0 + 20 * USEC_PER_MSEC);
	rpc_server_session_expire(s, t0 + 20 * USEC_PER_MSEC - 1);
	CHECK_EQ(n_cancelled, 0);
	rpc_server_session_expire(s, t0 + 20 * USEC_PER_MSEC);
	CHECK_EQ(n_cancelled, 1);
	h2_pump(p, s);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, RPC_DEADLINE_EXCEEDED);

	/* Headers at t0 with a 1 s timeout, the body at t0 + 2 s: over before
	 * dispatch, the handler never runs. */
	id = h2_peer_request(p, "/t.S/Defer", "application/grpc", NULL, 0, "1S", false);
	h2_pump(p, s);
	CHECK(!h2_peer_result(p, id)->closed);
	CHECK_EQ(rpc_server_session_next_deadline(s), t0 + USEC_PER_SEC);
	h2_peer_set_clock(p, t0 + 2 * USEC_PER_SEC);
	CHECK_EQ(h2_peer_send(p, id, NULL, 0, true), 0);
	h2_pump(p, s);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, RPC_DEADLINE_EXCEEDED);
	CHECK_STR(h2_peer_result(p, id)->grpc_message, "deadline exceeded before the call was dispatched");
	CHECK_EQ(n_deferred, 1);
}

TEST(undecodable_protobuf_is_invalid_argument)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[16];
	size_t n = h2_grpc_frame(body, (const uint8_t *)"\xff\xff\xff", 3, false);
	struct h2_result *r = one_call(s, p, "/t.S/Mount", "application/grpc", body, n, NULL);
	CHECK_EQ(r->grpc_status, RPC_INVALID_ARGUMENT);
}

TEST(missing_truncated_and_extra_messages)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[600];
	struct h2_result *r = one_call(s, p, "/t.S/Mount", "application/grpc", NULL, 0, NULL);
	CHECK_EQ(r->grpc_status, RPC_INTERNAL);
	CHECK_STR(r->grpc_message, "missing request message");
	rpc_prefix_encode(body, false, 10);
	r = one_call(s, p, "/t.S/Mount", "application/grpc", body, 8, NULL);
	CHECK_EQ(r->grpc_status, RPC_INTERNAL);
	CHECK_STR(r->grpc_message, "truncated request message");
	r = one_call(s, p, "/t.S/Mount", "application/grpc", body, 3, NULL);
	CHECK_EQ(r->grpc_status, RPC_INTERNAL);
	size_t n = mount_body(body, "a");
	n += mount_body(body + n, "b");
	r = one_call(s, p, "/t.S/Mount", "application/grpc", body, n, NULL);
	CHECK_EQ(r->grpc_status, RPC_INTERNAL);
}

TEST(error_message_is_percent_encoded)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[300];
	size_t n = mount_body(body, "fail");
	struct h2_result *r = one_call(s, p, "/t.S/Mount", "application/grpc", body, n, NULL);
	CHECK_EQ(r->grpc_status, RPC_FAILED_PRECONDITION);
	CHECK_STR(r->grpc_message, "bad\n100% \xc3\xbc");
}

TEST(deferred_reply_and_notify)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[16];
	size_t n = h2_grpc_frame(body, NULL, 0, false);
	int32_t id = h2_peer_request(p, "/t.S/Defer", "application/grpc", body, n, NULL, true);
	h2_pump(p, s);
	CHECK_EQ(n_deferred, 1);
	CHECK_EQ(rpc_server_session_pending_calls(s), 1);
	CHECK(!h2_peer_result(p, id)->closed);
	CHECK_EQ(n_notified, 0);
	VmTools__LaunchProcessResponse resp = VM_TOOLS__LAUNCH_PROCESS_RESPONSE__INIT;
	resp.status = VM_TOOLS__PROCESS_STATUS__EXITED;
	resp.code = 3;
	rpc_call_reply(deferred[0], &resp.base);
	CHECK_EQ(n_notified, 1);
	h2_pump(p, s);
	struct h2_result *r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, 0);
	CHECK_EQ(r->data_len, 9);
	CHECK(memcmp(r->data + 5, "\x08\x01\x10\x06", 4) == 0);
	CHECK_EQ(n_cancelled, 0);
}

TEST(deadline_exceeded_cancels_handler)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[16];
	size_t n = h2_grpc_frame(body, NULL, 0, false);
	/* A clock of the test's own: on the real one, a loaded machine could
	 * pass 20 ms between the headers and the body, and the call would be
	 * refused before its dispatch. */
	uint64_t before = 7 * 1000000;
	h2_peer_set_clock(p, before);
	int32_t id = h2_peer_request(p, "/t.S/Defer", "application/grpc", body, n, "20m", true);
	int32_t id2 = h2_peer_request(p, "/t.S/Defer", "application/grpc", body, n, "1H", true);
	h2_pump(p, s);
	uint64_t d = rpc_server_session_next_deadline(s);
	CHECK_EQ(d, before + 20000);
	rpc_server_session_expire(s, d - 1);
	CHECK_EQ(n_cancelled, 0);
	rpc_server_session_expire(s, d);
	CHECK_EQ(n_cancelled, 1);
	h2_pump(p, s);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, RPC_DEADLINE_EXCEEDED);
	CHECK(!h2_peer_result(p, id2)->closed);
	CHECK_EQ(rpc_server_session_pending_calls(s), 1);
	CHECK(rpc_server_session_next_deadline(s) > d + 3000000000ull);
	/* Freeing the session cancels what is left. */
	rpc_server_session_free(TAKE_PTR(s));
	CHECK_EQ(n_cancelled, 2);
}

TEST(malformed_timeout_is_ignored)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[300];
	size_t n = mount_body(body, "ab");
	struct h2_result *r = one_call(s, p, "/t.S/Mount", "application/grpc", body, n, "soon");
	CHECK_EQ(r->grpc_status, 0);
}

TEST(stream_reset_mid_call_cancels)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[16];
	size_t n = h2_grpc_frame(body, NULL, 0, false);
	int32_t id = h2_peer_request(p, "/t.S/Defer", "application/grpc", body, n, NULL, true);
	h2_pump(p, s);
	CHECK_EQ(rpc_server_session_pending_calls(s), 1);
	h2_peer_reset(p, id);
	h2_pump(p, s);
	CHECK_EQ(n_cancelled, 1);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
	CHECK(deferred[0] == NULL);
	/* The connection goes on. */
	uint8_t mb[300];
	n = mount_body(mb, "x");
	CHECK_EQ(one_call(s, p, "/t.S/Mount", "application/grpc", mb, n, NULL)->grpc_status, 0);
}

TEST(hundred_concurrent_calls)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[16];
	int32_t ids[100];
	size_t n = h2_grpc_frame(body, NULL, 0, false);
	for (int i = 0; i < 100; i++)
		ids[i] = h2_peer_request(p, "/t.S/Defer", "application/grpc", body, n, NULL, true);
	h2_pump(p, s);
	CHECK_EQ(n_deferred, 100);
	CHECK_EQ(rpc_server_session_pending_calls(s), 100);
	VmTools__LaunchProcessResponse resp = VM_TOOLS__LAUNCH_PROCESS_RESPONSE__INIT;
	for (int i = 99; i >= 0; i--) {
		resp.code = i;
		rpc_call_reply(deferred[i], &resp.base);
	}
	h2_pump(p, s);
	for (int i = 0; i < 100; i++) {
		struct h2_result *r = h2_peer_result(p, ids[i]);
		CHECK_EQ(r->grpc_status, 0);
		VmTools__LaunchProcessResponse *got =
			vm_tools__launch_process_response__unpack(NULL, r->data_len - 5, r->data + 5);
		CHECK(got);
		CHECK_EQ(got->code, i);
		vm_tools__launch_process_response__free_unpacked(got, NULL);
	}
}

TEST(streams_over_limit_are_refused)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[16];
	size_t n = h2_grpc_frame(body, NULL, 0, false);
	/* Let the client learn the server's SETTINGS first. */
	h2_pump(p, s);
	for (int i = 0; i < 140; i++)
		h2_peer_request(p, "/t.S/Defer", "application/grpc", body, n, NULL, true);
	h2_pump(p, s);
	/* nghttp2 as a client queues requests beyond the peer's limit; what
	 * reached the server is capped at 128. */
	CHECK_EQ(n_deferred, 128);
	rpc_server_session_free(TAKE_PTR(s));
	CHECK_EQ(n_cancelled, 128);
}

TEST(huge_header_list_is_resource_exhausted)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	static char path[20000];
	uint8_t body[300];
	size_t n = mount_body(body, "a");
	path[0] = '/';
	memset(path + 1, 'p', sizeof(path) - 2);
	int32_t id = h2_peer_request(p, path, "application/grpc", body, n, NULL, true);
	h2_pump(p, s);
	struct h2_result *r = h2_peer_result(p, id);
	CHECK(r->closed);
	CHECK_EQ(r->rst_code, 0);
	CHECK_EQ(r->http_status, 200);
	CHECK_EQ(r->grpc_status, RPC_RESOURCE_EXHAUSTED);
	CHECK_STR(r->grpc_message, "request headers larger than the limit of 16384 bytes");
	/* The same with the stream left open: answered, then reset NO_ERROR. */
	id = h2_peer_request(p, path, "application/grpc", body, n, NULL, false);
	h2_pump(p, s);
	r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, RPC_RESOURCE_EXHAUSTED);
	CHECK(r->closed);
	CHECK_EQ(one_call(s, p, "/t.S/Mount", "application/grpc", body, n, NULL)->grpc_status, 0);
}

TEST(bad_preface_is_protocol_error)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	const char *junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	CHECK_EQ(rpc_server_session_feed(s, (const uint8_t *)junk, strlen(junk), now_usec()), -EPROTO);
}

TEST(oversized_frame_is_connection_error)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	const char *preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	/* An empty SETTINGS, then a DATA frame header claiming 16 MiB - 1. */
	const uint8_t settings[] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };
	const uint8_t big[] = { 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1 };
	const uint8_t *out;
	ssize_t n;
	bool goaway = false;

	CHECK_EQ(rpc_server_session_feed(s, (const uint8_t *)preface, strlen(preface), now_usec()), 0);
	CHECK_EQ(rpc_server_session_feed(s, settings, sizeof(settings), now_usec()), 0);
	(void)rpc_server_session_feed(s, big, sizeof(big), now_usec());
	/* The server answers with GOAWAY(FRAME_SIZE_ERROR) and is done. */
	while ((n = rpc_server_session_pull(s, &out)) > 0)
		for (ssize_t i = 0; i + 9 <= n;) {
			uint32_t len = (uint32_t)out[i] << 16 | (uint32_t)out[i + 1] << 8 | out[i + 2];
			if (out[i + 3] == 7 && len >= 8 && out[i + 9 + 7] == NGHTTP2_FRAME_SIZE_ERROR)
				goaway = true;
			i += 9 + (ssize_t)len;
		}
	CHECK(goaway);
	CHECK(!rpc_server_session_alive(s));
	CHECK(strncmp(rpc_server_session_failure(s), "FRAME_SIZE_ERROR: ", 18) == 0);
}

/* RST_STREAM(CANCEL) of a stream, as raw bytes. */
static void feed_rst(struct rpc_server_session *s, uint32_t stream)
{
	const uint8_t rst[] = { 0, 0, 4, 3, 0, stream >> 24, stream >> 16, stream >> 8, stream, 0, 0, 0, 8 };
	CHECK_EQ(rpc_server_session_feed(s, rst, sizeof(rst), now_usec()), 0);
}

TEST(reset_of_a_stream_never_opened_is_ignored)
{
	/* What gRPC's C core sends when a call waiting for a stream slot is
	 * cancelled before its HEADERS went out: not worth the connection. */
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[16], mb[300];
	size_t n = h2_grpc_frame(body, NULL, 0, false);
	int32_t id = h2_peer_request(p, "/t.S/Defer", "application/grpc", body, n, NULL, true);
	h2_pump(p, s);
	CHECK_EQ(rpc_server_session_pending_calls(s), 1);
	feed_rst(s, (uint32_t)id + 2); /* the next stream: idle */
	feed_rst(s, (uint32_t)id + 40);
	h2_pump(p, s);
	CHECK(rpc_server_session_alive(s));
	CHECK(rpc_server_session_failure(s) == NULL);
	/* The call in flight goes on and is answered; new streams, the
	 * reset ids included, are served. */
	CHECK_EQ(rpc_server_session_pending_calls(s), 1);
	CHECK_EQ(n_cancelled, 0);
	VmTools__LaunchProcessResponse resp = VM_TOOLS__LAUNCH_PROCESS_RESPONSE__INIT;
	rpc_call_reply(deferred[0], &resp.base);
	h2_pump(p, s);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, 0);
	n = mount_body(mb, "abc");
	for (int i = 0; i < 3; i++)
		CHECK_EQ(one_call(s, p, "/t.S/Mount", "application/grpc", mb, n, NULL)->grpc_status, 0);
	/* A reset of a stream that was opened still cancels its call. */
	id = h2_peer_request(p, "/t.S/Defer", "application/grpc", body, n = h2_grpc_frame(body, NULL, 0, false), NULL,
			     true);
	h2_pump(p, s);
	CHECK_EQ(rpc_server_session_pending_calls(s), 1);
	feed_rst(s, (uint32_t)id);
	CHECK_EQ(n_cancelled, 1);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
}

TEST(a_protocol_error_is_named)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	const uint8_t *out;

	h2_pump(p, s);
	CHECK(rpc_server_session_failure(s) == NULL);
	/* Still a connection error: a reset of stream 0. */
	feed_rst(s, 0);
	while (rpc_server_session_pull(s, &out) > 0)
		;
	CHECK(!rpc_server_session_alive(s));
	CHECK_STR(rpc_server_session_failure(s), "PROTOCOL_ERROR: RST_STREAM: stream_id == 0");
	/* The first reason stays. */
	feed_rst(s, 0);
	CHECK_STR(rpc_server_session_failure(s), "PROTOCOL_ERROR: RST_STREAM: stream_id == 0");

	/* An error nghttp2 returns instead of a GOAWAY is named too. */
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s2 = new_session();
	const char *junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	CHECK_EQ(rpc_server_session_feed(s2, (const uint8_t *)junk, strlen(junk), now_usec()), -EPROTO);
	CHECK_STR(rpc_server_session_failure(s2), nghttp2_strerror(NGHTTP2_ERR_BAD_CLIENT_MAGIC));
}

TEST(shutdown_finishes_calls_in_flight)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint8_t body[16];
	size_t n = h2_grpc_frame(body, NULL, 0, false);
	int32_t id = h2_peer_request(p, "/t.S/Defer", "application/grpc", body, n, NULL, true);
	h2_pump(p, s);
	rpc_server_session_shutdown(s);
	h2_pump(p, s);
	uint32_t err = 99;
	CHECK(h2_peer_goaway(p, &err));
	CHECK_EQ(err, NGHTTP2_NO_ERROR);
	CHECK(rpc_server_session_alive(s));
	VmTools__LaunchProcessResponse resp = VM_TOOLS__LAUNCH_PROCESS_RESPONSE__INIT;
	rpc_call_reply(deferred[0], &resp.base);
	h2_pump(p, s);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, 0);
	CHECK(!rpc_server_session_alive(s));
}

/* --- the client core against the server core ----------------------------- */

static int reply_code = -1;
static char reply_msg[256];
static uint8_t reply_data[64];
static size_t reply_len;

static void on_reply(int code, const char *message, const uint8_t *data, size_t len, void *ud)
{
	reply_code = code;
	snprintf(reply_msg, sizeof(reply_msg), "%s", message);
	reply_len = len < sizeof(reply_data) ? len : sizeof(reply_data);
	if (data)
		memcpy(reply_data, data, reply_len);
}

static void pump_client(struct rpc_client_session *c, struct rpc_server_session *s)
{
	for (int i = 0; i < 100; i++) {
		const uint8_t *d;
		ssize_t n;
		bool moved = false;
		while ((n = rpc_client_session_pull(c, &d)) > 0) {
			moved = true;
			rpc_server_session_feed(s, d, (size_t)n, now_usec());
		}
		while ((n = rpc_server_session_pull(s, &d)) > 0) {
			moved = true;
			rpc_client_session_feed(c, d, (size_t)n);
		}
		if (!moved)
			break;
	}
}

TEST(client_core_ok_error_and_deadline)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(rpc_client_session_freep) struct rpc_client_session *c = NULL;
	VmTools__MountRequest req = VM_TOOLS__MOUNT_REQUEST__INIT;
	CHECK_EQ(rpc_client_session_new(&c), 0);

	req.source = "hello";
	CHECK_EQ(rpc_client_session_call(c, "/t.S/Mount", &req.base, 0, on_reply, NULL), 0);
	pump_client(c, s);
	CHECK_EQ(reply_code, 0);
	CHECK_EQ(reply_len, 2);
	CHECK(memcmp(reply_data, "\x08\x0a", 2) == 0);

	req.source = "fail";
	CHECK_EQ(rpc_client_session_call(c, "/t.S/Mount", &req.base, 0, on_reply, NULL), 0);
	pump_client(c, s);
	CHECK_EQ(reply_code, RPC_FAILED_PRECONDITION);
	CHECK_STR(reply_msg, "bad\n100% \xc3\xbc");

	CHECK_EQ(rpc_client_session_call(c, "/t.S/Nope", &req.base, 0, on_reply, NULL), 0);
	pump_client(c, s);
	CHECK_EQ(reply_code, RPC_UNIMPLEMENTED);

	reply_code = -1;
	CHECK_EQ(rpc_client_session_call(c, "/t.S/Defer", &req.base, 5000000, on_reply, NULL), 0);
	pump_client(c, s);
	CHECK_EQ(reply_code, -1);
	CHECK_EQ(rpc_client_session_pending_calls(c), 1);
	rpc_client_session_expire(c, rpc_client_session_next_deadline(c));
	CHECK_EQ(reply_code, RPC_DEADLINE_EXCEEDED);
	pump_client(c, s);
	/* The client's RST_STREAM reached the server, which dropped the call. */
	CHECK_EQ(n_cancelled, 1);
}

/* The bytes a unary exchange puts on the wire, pinned: streaming support
 * must leave unary calls byte-identical (the digest was taken with the
 * unary-only core). OK, failed, deferred, unknown method, 64 KiB request. */
TEST(unary_wire_bytes_are_unchanged)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	struct buf out = { 0 };
	uint8_t body[300];
	size_t n = mount_body(body, "abc"), bign;
	_cleanup_free_ uint8_t *big = NULL;
	VmTools__MountRequest req = VM_TOOLS__MOUNT_REQUEST__INIT;
	_cleanup_free_ char *src = malloc(64 * 1024);

	memset(src, 's', 64 * 1024 - 1);
	src[64 * 1024 - 1] = 0;
	req.source = src;
	bign = vm_tools__mount_request__get_packed_size(&req);
	big = malloc(bign + 5);
	rpc_prefix_encode(big, false, (uint32_t)bign);
	vm_tools__mount_request__pack(&req, big + 5);

	h2_peer_set_clock(p, 1000000);
	h2_pump_capture = &out;
	h2_peer_request(p, "/t.S/Mount", "application/grpc", body, n, NULL, true);
	h2_pump(p, s);
	n = mount_body(body, "fail");
	h2_peer_request(p, "/t.S/Mount", "application/grpc", body, n, NULL, true);
	h2_peer_request(p, "/t.S/Nope", "application/grpc", body, n, NULL, true);
	h2_peer_request(p, "/t.S/Defer", "application/grpc", (const uint8_t *)"\0\0\0\0\0", 5, "10S", true);
	h2_peer_request(p, "/t.S/Mount", "application/grpc", big, bign + 5, NULL, true);
	h2_pump(p, s);
	CHECK_EQ(n_deferred, 1);
	VmTools__LaunchProcessResponse resp = VM_TOOLS__LAUNCH_PROCESS_RESPONSE__INIT;
	rpc_call_reply(deferred[0], &resp.base);
	h2_pump(p, s);
	h2_pump_capture = NULL;
	uint32_t crc = (uint32_t)crc32(0, out.data, (uInt)out.len);
	fprintf(stderr, "# %zu bytes, crc32 %08x\n", out.len, crc);
	size_t len = out.len;
	buf_clear(&out);
	CHECK_EQ(len, 349);
	CHECK_EQ(crc, 0x9e3bcd67);
}
