/* Streaming calls through the gRPC server core, driven by a real HTTP/2
 * client in memory (h2-peer.c): the four kinds of call, message sizes up
 * to the per-message limit, compression inside a stream, back-pressure
 * both ways, cancellation, many calls at once. */
#include <nghttp2/nghttp2.h>
#include <zlib.h>

#include "base/time-util.h"
#include "h2-peer.h"
#include "rpc/client-session.h"
#include "rpc/wire.h"
#include "stream-service.h"
#include "streamtest.pb-c.h"
#include "test.h"

#define ECHO "/streamtest.Stream/Echo"
#define ADD "/streamtest.Stream/Add"
#define COUNTDOWN "/streamtest.Stream/Countdown"

static size_t max_buffered;

static void track_buffered(struct rpc_server_session *s)
{
	size_t b = rpc_server_session_buffered(s);
	if (b > max_buffered)
		max_buffered = b;
}

static struct rpc_server_session *new_session_limited(const struct rpc_limits *limits)
{
	struct rpc_server_session *s;
	stream_service_reset();
	max_buffered = 0;
	h2_pump_hook = track_buffered;
	if (rpc_server_session_new(&stream_service, limits, NULL, NULL, &s) < 0)
		return NULL;
	return s;
}

static struct rpc_server_session *new_session(void)
{
	return new_session_limited(NULL);
}

/* A Chunk with len bytes of data (byte i is i * 7 + seed) and a value. */
static uint8_t *chunk(size_t len, int64_t value, int seed, size_t *ret_len)
{
	Streamtest__Chunk c = STREAMTEST__CHUNK__INIT;
	uint8_t *data = malloc(len + 1), *out;
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 7 + (size_t)seed);
	c.data.data = data;
	c.data.len = len;
	c.value = value;
	*ret_len = streamtest__chunk__get_packed_size(&c);
	out = malloc(*ret_len + 1);
	streamtest__chunk__pack(&c, out);
	free(data);
	return out;
}

static void send_chunk(struct h2_peer *p, int32_t id, size_t len, int64_t value, int seed)
{
	size_t n;
	uint8_t *m = chunk(len, value, seed, &n);
	h2_peer_send_msg(p, id, m, n, false);
	free(m);
}

/* The n-th response message as a Chunk (the caller frees), or NULL. */
static Streamtest__Chunk *reply_chunk(struct h2_peer *p, int32_t id, size_t n)
{
	const uint8_t *d;
	size_t len;
	if (!h2_result_message(h2_peer_result(p, id), n, &d, &len))
		return NULL;
	return streamtest__chunk__unpack(NULL, len, d);
}

static bool chunk_is(const Streamtest__Chunk *c, size_t len, int64_t value, int seed)
{
	if (!c || c->data.len != len || c->value != value)
		return false;
	for (size_t i = 0; i < len; i++)
		if (c->data.data[i] != (uint8_t)(i * 7 + (size_t)seed))
			return false;
	return true;
}

static Streamtest__Sum *reply_sum(struct h2_peer *p, int32_t id)
{
	const uint8_t *d;
	size_t len;
	if (!h2_result_message(h2_peer_result(p, id), 0, &d, &len))
		return NULL;
	return streamtest__sum__unpack(NULL, len, d);
}

/* --- the four kinds ------------------------------------------------------- */

TEST(echo_every_size_up_to_the_limit)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	/* The largest Chunk within 4 MiB: 4 MiB - 5 bytes of data, tag, length
	 * varint (4 bytes) and the value (tag + 1 byte). */
	const size_t sizes[] = { 0, 1, 16 * 1024, 1024 * 1024, RPC_MAX_MESSAGE_SIZE - 7, 3 };
	int32_t id = h2_peer_start(p, ECHO, NULL);

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		send_chunk(p, id, sizes[i], (int64_t)i + 1, (int)i);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	struct h2_result *r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, 0);
	CHECK(r->closed);
	CHECK_EQ(h2_result_messages(r), ARRAY_SIZE(sizes));
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		Streamtest__Chunk *c = reply_chunk(p, id, i);
		bool same = chunk_is(c, sizes[i], (int64_t)i + 1, (int)i);
		streamtest__chunk__free_unpacked(c, NULL);
		CHECK(same);
	}
	CHECK_EQ(stream_stats.calls, 1);
	CHECK_EQ(stream_stats.ended, 1);
	CHECK_EQ(stream_stats.cancelled, 0);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
	/* The 4 MiB message was held whole, plus at most the 1 MiB window. */
	CHECK(max_buffered <= RPC_MAX_MESSAGE_SIZE + 5 + 1024 * 1024);
}

TEST(add_sums_a_client_stream)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	int32_t id = h2_peer_start(p, ADD, NULL);

	for (int i = 1; i <= 1000; i++)
		send_chunk(p, id, (size_t)i, i, i);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	struct h2_result *r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, 0);
	Streamtest__Sum *sum = reply_sum(p, id);
	CHECK(sum);
	bool ok = sum->total == 500500 && sum->count == 1000 && sum->bytes == 500500;
	streamtest__sum__free_unpacked(sum, NULL);
	CHECK(ok);
	CHECK_EQ(h2_result_messages(r), 1);
}

/* A bidirectional call may ask nothing: OK with no messages, as gRPC's
 * servers answer (a reflection client that closes at once got
 * INVALID_ARGUMENT before). The handler never sees it. */
TEST(bidirectional_stream_without_a_message_is_ok)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	int32_t id = h2_peer_start(p, ECHO, NULL);

	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, RPC_OK);
	CHECK_EQ(h2_result_messages(h2_peer_result(p, id)), 0);
	CHECK_EQ(stream_stats.calls, 0);
}

TEST(client_stream_without_a_message_is_invalid_argument)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	int32_t id = h2_peer_start(p, ADD, NULL);

	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, RPC_INVALID_ARGUMENT);
	CHECK_STR(h2_peer_result(p, id)->grpc_message, "no request message");
	CHECK_EQ(stream_stats.calls, 0);
}

TEST(countdown_streams_from_the_server)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	Streamtest__Count req = STREAMTEST__COUNT__INIT;
	uint8_t msg[32];
	int32_t id = h2_peer_start(p, COUNTDOWN, NULL);

	req.from = 3000;
	req.size = 100;
	h2_peer_send_msg(p, id, msg, streamtest__count__pack(&req, msg), false);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	struct h2_result *r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, 0);
	CHECK_EQ(h2_result_messages(r), 3000);
	for (size_t i = 0; i < 3000; i += 999) {
		Streamtest__Chunk *c = reply_chunk(p, id, i);
		bool ok = c && c->value == 3000 - (int64_t)i && c->data.len == 100;
		streamtest__chunk__free_unpacked(c, NULL);
		CHECK(ok);
	}
}

TEST(early_answer_while_the_client_streams)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	int32_t id = h2_peer_start(p, ADD, NULL);

	send_chunk(p, id, 10, 1, 0);
	send_chunk(p, id, 10, -1, 0);
	for (int i = 0; i < 100; i++)
		send_chunk(p, id, 1000, 1, 0);
	CHECK_EQ(h2_pump(p, s), 0);
	struct h2_result *r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, RPC_FAILED_PRECONDITION);
	CHECK_STR(r->grpc_message, "negative value -1");
	CHECK(r->closed); /* reset after the answer: the client stops */
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
	/* The connection goes on serving. */
	int32_t id2 = h2_peer_start(p, ADD, NULL);
	send_chunk(p, id2, 1, 5, 0);
	h2_peer_close_send(p, id2);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_result(p, id2)->grpc_status, 0);
}

/* --- limits per message -------------------------------------------------- */

TEST(oversized_message_in_a_stream_fails_the_call_only)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	int32_t id = h2_peer_start(p, ECHO, NULL);
	uint8_t *big = calloc(1, RPC_MAX_MESSAGE_SIZE + 1);

	/* Four messages of the limit are fine: the limit is per message. */
	for (int i = 0; i < 4; i++)
		send_chunk(p, id, RPC_MAX_MESSAGE_SIZE - 7, i, i);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(stream_stats.messages, 4);
	h2_peer_send_msg(p, id, big, RPC_MAX_MESSAGE_SIZE + 1, false);
	free(big);
	CHECK_EQ(h2_pump(p, s), 0);
	struct h2_result *r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, RPC_RESOURCE_EXHAUSTED);
	CHECK(strstr(r->grpc_message, "4194305 bytes is larger than the limit"));
	CHECK_EQ(h2_result_messages(r), 4);
	CHECK_EQ(stream_stats.cancelled, 1);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
	/* The connection keeps serving. */
	int32_t id2 = h2_peer_start(p, ECHO, NULL);
	send_chunk(p, id2, 5, 5, 5);
	h2_peer_close_send(p, id2);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_result(p, id2)->grpc_status, 0);
	CHECK_EQ(h2_result_messages(h2_peer_result(p, id2)), 1);
}

/* gzip or zlib (deflate) of msg. */
static size_t compress_msg(uint8_t *out, size_t cap, const uint8_t *msg, size_t len, bool gzip)
{
	z_stream z = { 0 };
	deflateInit2(&z, 6, Z_DEFLATED, gzip ? 31 : 15, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (uint8_t *)msg;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	deflate(&z, Z_FINISH);
	size_t n = z.total_out;
	deflateEnd(&z);
	return n;
}

TEST(compressed_messages_inside_a_stream)
{
	const char *names[] = { "gzip", "deflate" };
	for (int k = 0; k < 2; k++) {
		_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
		_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
		size_t cap = 8 * 1024 * 1024, n, z;
		uint8_t *out = malloc(cap);

		h2_peer_set_header(p, "grpc-encoding", names[k]);
		int32_t id = h2_peer_start(p, ECHO, NULL);
		/* Compressed, plain, compressed (3 MiB, inflated per message). */
		for (int i = 0; i < 3; i++) {
			size_t len = i == 2 ? 3 * 1024 * 1024 : 1000;
			uint8_t *m = chunk(len, i, 1, &n);
			if (i == 1) {
				h2_peer_send_msg(p, id, m, n, false);
			} else {
				z = compress_msg(out, cap, m, n, k == 0);
				h2_peer_send_msg(p, id, out, z, true);
			}
			free(m);
		}
		/* Then a bomb: 5 MiB of zeros once inflated. */
		uint8_t *zeros = calloc(1, 5 * 1024 * 1024);
		z = compress_msg(out, cap, zeros, 5 * 1024 * 1024, k == 0);
		free(zeros);
		h2_peer_send_msg(p, id, out, z, true);
		free(out);
		CHECK_EQ(h2_pump(p, s), 0);
		struct h2_result *r = h2_peer_result(p, id);
		CHECK_EQ(h2_result_messages(r), 3);
		for (int i = 0; i < 3; i++) {
			Streamtest__Chunk *c = reply_chunk(p, id, (size_t)i);
			bool ok = chunk_is(c, i == 2 ? 3 * 1024 * 1024 : 1000, i, 1);
			streamtest__chunk__free_unpacked(c, NULL);
			CHECK(ok);
		}
		CHECK_EQ(r->grpc_status, RPC_RESOURCE_EXHAUSTED);
		CHECK(strstr(r->grpc_message, "once decompressed"));
		CHECK_EQ(stream_stats.cancelled, 1);
		h2_peer_set_header(p, NULL, NULL);
	}
}

/* --- back-pressure -------------------------------------------------------- */

TEST(paused_receiver_holds_the_peer_back)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	int32_t id = h2_peer_start(p, ECHO, NULL);
	const size_t msg = 64 * 1024, count = 128; /* 8 MiB */

	stream_pause_echo = true;
	for (size_t i = 0; i < count; i++)
		send_chunk(p, id, msg, (int64_t)i, (int)i);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	/* One message delivered, then paused: the peer is stuck on the window
	 * with most of its 8 MiB unsent, and the server holds about 1 MiB. */
	CHECK_EQ(stream_stats.messages, 1);
	CHECK(stream_stats.echo);
	CHECK(h2_peer_unsent(p, id) > 6 * 1024 * 1024);
	CHECK(rpc_server_session_buffered(s) <= 1024 * 1024);
	CHECK(max_buffered <= 1024 * 1024);
	fprintf(stderr, "# paused: server holds %zu bytes, peer holds back %zu\n", rpc_server_session_buffered(s),
		h2_peer_unsent(p, id));
	/* Resumed from outside the session: everything flows, still bounded. */
	stream_pause_echo = false;
	rpc_call_resume_receiving(stream_stats.echo);
	CHECK_EQ(h2_pump(p, s), 0);
	struct h2_result *r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, 0);
	CHECK_EQ(h2_result_messages(r), count);
	CHECK_EQ(stream_stats.messages, count);
	CHECK(max_buffered <= 1024 * 1024 + 16 * 1024);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
}

TEST(slow_reader_holds_the_handler_back)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	Streamtest__Count req = STREAMTEST__COUNT__INIT;
	uint8_t msg[32];
	int32_t id = h2_peer_start(p, COUNTDOWN, NULL);

	req.from = 300;
	req.size = 64 * 1024; /* 19 MiB in all */
	h2_peer_hold_reads(p, true);
	h2_peer_send_msg(p, id, msg, streamtest__count__pack(&req, msg), false);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	/* The peer's window (64 KiB) is shut: the handler was told to stop at
	 * the high-water mark and has not been called back. */
	CHECK_EQ(stream_stats.high_water, 1);
	CHECK_EQ(stream_stats.writable, 0);
	CHECK(stream_stats.max_queued >= RPC_SEND_HIGH_WATER);
	CHECK(stream_stats.max_queued < RPC_SEND_HIGH_WATER + 64 * 1024 + 64);
	CHECK(h2_peer_result(p, id)->all.len <= 64 * 1024);
	fprintf(stderr, "# slow reader: %zu bytes queued at most, %zu received\n", stream_stats.max_queued,
		h2_peer_result(p, id)->all.len);
	/* The peer reads: writable fires, the rest follows. */
	h2_peer_hold_reads(p, false);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK(stream_stats.writable >= 1);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, 0);
	CHECK_EQ(h2_result_messages(h2_peer_result(p, id)), 300);
	CHECK(stream_stats.max_queued < RPC_SEND_HIGH_WATER + 64 * 1024 + 64);
}

/* Echo's back-pressure both ways: a peer that sends 8 MiB and reads
 * nothing fills the server's send queue, the handler stops receiving, the
 * peer's window closes. */
TEST(echo_to_a_peer_that_does_not_read_stays_bounded)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	int32_t id = h2_peer_start(p, ECHO, NULL);

	h2_peer_hold_reads(p, true);
	for (size_t i = 0; i < 128; i++)
		send_chunk(p, id, 64 * 1024, (int64_t)i, (int)i);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK(h2_peer_unsent(p, id) > 4 * 1024 * 1024);
	CHECK(stream_stats.max_queued < RPC_SEND_HIGH_WATER + 64 * 1024 + 64);
	CHECK(max_buffered <= 1024 * 1024);
	h2_peer_hold_reads(p, false);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, 0);
	CHECK_EQ(h2_result_messages(h2_peer_result(p, id)), 128);
}

/* A client-streaming handler that has not set a receiver takes nothing:
 * the stream keeps its base window, the peer waits. */
static struct rpc_call *mute;

static void h_mute(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	mute = call;
}

TEST(handler_without_a_receiver_holds_the_peer_at_the_base_window)
{
	static const struct rpc_method m[] = { { "/t.S/Mute", &streamtest__chunk__descriptor, h_mute, true, false } };
	static const struct rpc_service svc = { m, 1, NULL };
	struct rpc_server_session *s;
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();

	CHECK_EQ(rpc_server_session_new(&svc, NULL, NULL, NULL, &s), 0);
	/* SETTINGS first: before them a stream may send HTTP/2's default 64 KiB. */
	CHECK_EQ(h2_pump(p, s), 0);
	int32_t id = h2_peer_start(p, "/t.S/Mute", NULL);
	for (int i = 0; i < 64; i++)
		send_chunk(p, id, 4096, i, i);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK(mute);
	fprintf(stderr, "# no receiver: server holds %zu bytes, peer holds back %zu\n", rpc_server_session_buffered(s),
		h2_peer_unsent(p, id));
	CHECK(rpc_server_session_buffered(s) <= 16 * 1024);
	CHECK(h2_peer_unsent(p, id) > 200 * 1024);
	rpc_call_fail(mute, RPC_ABORTED, "done");
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, RPC_ABORTED);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
	rpc_server_session_free(s);
}

/* --- cancellation ----------------------------------------------------------- */

TEST(reset_mid_stream_cancels_once)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	int32_t id = h2_peer_start(p, ECHO, NULL);

	send_chunk(p, id, 100, 1, 1);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(stream_stats.calls, 1);
	h2_peer_reset(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(stream_stats.cancelled, 1);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
}

TEST(deadline_mid_stream_cancels_once)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	uint64_t t0 = 1000000000;

	h2_peer_set_clock(p, t0);
	/* A bidi call that has answered (response headers out) and a client
	 * stream that has not. */
	int32_t echo = h2_peer_start(p, ECHO, "2S");
	int32_t add = h2_peer_start(p, ADD, "2S");
	send_chunk(p, echo, 100, 1, 1);
	send_chunk(p, add, 100, 1, 1);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(stream_stats.calls, 2);
	CHECK_EQ(rpc_server_session_next_deadline(s), t0 + 2000000);
	rpc_server_session_expire(s, t0 + 1999999);
	CHECK_EQ(stream_stats.cancelled, 0);
	rpc_server_session_expire(s, t0 + 2000000);
	CHECK_EQ(stream_stats.cancelled, 2);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_result(p, add)->grpc_status, RPC_DEADLINE_EXCEEDED);
	/* The echo had answered a message: the status follows it. */
	CHECK_EQ(h2_peer_result(p, echo)->grpc_status, RPC_DEADLINE_EXCEEDED);
	CHECK_EQ(h2_result_messages(h2_peer_result(p, echo)), 1);
	CHECK(h2_peer_result(p, echo)->closed);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
	/* Later bytes of those streams are dropped; nothing more is cancelled. */
	rpc_server_session_expire(s, t0 + 5000000);
	CHECK_EQ(stream_stats.cancelled, 2);
}

/* Behind a shut window the status could wait for ever: the stream is
 * reset instead, and the queue freed. */
TEST(deadline_behind_a_shut_window_resets)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	Streamtest__Count req = STREAMTEST__COUNT__INIT;
	uint8_t msg[32];
	uint64_t t0 = 1000000000;

	h2_peer_set_clock(p, t0);
	h2_peer_hold_reads(p, true);
	int32_t id = h2_peer_start(p, COUNTDOWN, "1S");
	req.from = 100;
	req.size = 64 * 1024;
	h2_peer_send_msg(p, id, msg, streamtest__count__pack(&req, msg), false);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(stream_stats.high_water, 1);
	rpc_server_session_expire(s, t0 + 1000000);
	CHECK_EQ(stream_stats.cancelled, 1);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK(h2_peer_result(p, id)->closed);
	CHECK_EQ(h2_peer_result(p, id)->rst_code, NGHTTP2_CANCEL);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
}

TEST(connection_loss_mid_stream_cancels_once)
{
	struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	Streamtest__Count req = STREAMTEST__COUNT__INIT;
	uint8_t msg[32];

	int32_t echo = h2_peer_start(p, ECHO, NULL);
	send_chunk(p, echo, 100, 1, 1);
	int32_t cd = h2_peer_start(p, COUNTDOWN, NULL);
	req.from = 1000;
	req.size = 64 * 1024;
	h2_peer_hold_reads(p, true);
	h2_peer_send_msg(p, cd, msg, streamtest__count__pack(&req, msg), false);
	h2_peer_close_send(p, cd);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(stream_stats.calls, 2);
	CHECK_EQ(stream_stats.cancelled, 0);
	rpc_server_session_free(s);
	CHECK_EQ(stream_stats.cancelled, 2);
}

/* --- many at once ----------------------------------------------------------- */

TEST(twenty_streaming_calls_on_one_connection_all_complete)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	int32_t echo[20], add[20];

	/* 40 calls, 2 MiB each way per echo, interleaved in 32 KiB messages,
	 * one 4 MiB message in the middle of each Add. */
	for (int i = 0; i < 20; i++) {
		echo[i] = h2_peer_start(p, ECHO, NULL);
		add[i] = h2_peer_start(p, ADD, NULL);
	}
	for (int k = 0; k < 64; k++)
		for (int i = 0; i < 20; i++) {
			send_chunk(p, echo[i], 32 * 1024, k, i);
			send_chunk(p, add[i], k == 32 ? RPC_MAX_MESSAGE_SIZE - 7 : 1000, 1, i);
		}
	for (int i = 0; i < 20; i++) {
		h2_peer_close_send(p, echo[i]);
		h2_peer_close_send(p, add[i]);
	}
	CHECK_EQ(h2_pump(p, s), 0);
	for (int i = 0; i < 20; i++) {
		CHECK_EQ(h2_peer_result(p, echo[i])->grpc_status, 0);
		CHECK_EQ(h2_result_messages(h2_peer_result(p, echo[i])), 64);
		CHECK_EQ(h2_peer_result(p, add[i])->grpc_status, 0);
		Streamtest__Sum *sum = reply_sum(p, add[i]);
		bool ok = sum && sum->count == 64 && sum->total == 64;
		streamtest__sum__free_unpacked(sum, NULL);
		CHECK(ok);
	}
	CHECK(max_buffered <= 16 * 1024 * 1024);
	fprintf(stderr, "# 40 calls: at most %zu bytes buffered\n", max_buffered);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
}

/* Streaming calls that sent in bulk and then went idle (tunnels) keep
 * their raised windows, but those come from half the budget only: large
 * messages of other calls are still admitted. */
TEST(idle_streaming_calls_do_not_starve_others)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	int32_t idle[20];

	for (int i = 0; i < 20; i++) {
		idle[i] = h2_peer_start(p, ECHO, NULL);
		for (int k = 0; k < 4; k++)
			send_chunk(p, idle[i], 64 * 1024, 1, 1);
	}
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(stream_stats.calls, 20);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
	int32_t id = h2_peer_start(p, ADD, NULL);
	for (int k = 0; k < 4; k++)
		send_chunk(p, id, RPC_MAX_MESSAGE_SIZE - 7, 1, k);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, 0);
	for (int i = 0; i < 20; i++)
		h2_peer_close_send(p, idle[i]);
	CHECK_EQ(h2_pump(p, s), 0);
	for (int i = 0; i < 20; i++)
		CHECK_EQ(h2_peer_result(p, idle[i])->grpc_status, 0);
}

/* --- messages between half of and all of a window ------------------------ */

/* nghttp2 announces given-back window (WINDOW_UPDATE) only once half the
 * window is given back. A stream that has delivered less than that and then
 * waits for a message of more than the rest of its window (but not more
 * than the window: no reservation) waited for its deadline: the peer had
 * sent what the window allows, the server held what it had given back. */
static void check_add(struct h2_peer *p, int32_t id, int64_t count, int64_t total, int64_t bytes)
{
	struct h2_result *r = h2_peer_result(p, id);
	CHECK(r->closed);
	CHECK_EQ(r->grpc_status, 0);
	Streamtest__Sum *sum = reply_sum(p, id);
	CHECK(sum);
	int64_t c = sum->count, t = sum->total, b = sum->bytes;
	streamtest__sum__free_unpacked(sum, NULL);
	CHECK_EQ(c, count);
	CHECK_EQ(t, total);
	CHECK_EQ(b, bytes);
}

/* 7000 bytes, then 16000: with 16 KiB in flight, the second is more than
 * half in and not whole after the first is delivered, so the window is
 * raised to 1 MiB (the 7000 bytes given back are not announced). */
static void send_bulk_start(struct h2_peer *p, int32_t id)
{
	send_chunk(p, id, 7000, 1, 1);
	send_chunk(p, id, 16000, 2, 2);
}

TEST(message_of_most_of_a_raised_window_arrives)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	const size_t big = 1024 * 1024 - 4096;

	/* SETTINGS first: before them a stream may send HTTP/2's default 64 KiB. */
	CHECK_EQ(h2_pump(p, s), 0);
	int32_t id = h2_peer_start(p, ADD, NULL);
	send_bulk_start(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(stream_stats.messages, 2);
	/* 23 KiB given back, under half the window: most of 1 MiB next. */
	send_chunk(p, id, big, 3, 3);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_unsent(p, id), 0);
	check_add(p, id, 3, 6, (int64_t)(7000 + 16000 + big));
	if (test_failed_flag)
		return;
	CHECK_EQ(stream_stats.calls, 1);
	CHECK_EQ(stream_stats.cancelled, 0);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
	/* Not reserved, within the raised window: 1 MiB at most. */
	CHECK(max_buffered <= 1024 * 1024);
}

/* The same at the base window, once the streaming pool is spent (no
 * window can be raised): 7000 bytes given back, then 16000 wanted. */
TEST(message_of_most_of_the_base_window_arrives_with_the_pool_spent)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	int32_t bulk[8];

	CHECK_EQ(h2_pump(p, s), 0);
	/* Eight calls that sent in bulk hold the pool's 7 MiB (seven windows
	 * of 1 MiB and the rest). */
	for (int i = 0; i < 8; i++) {
		bulk[i] = h2_peer_start(p, ECHO, NULL);
		send_bulk_start(p, bulk[i]);
	}
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(stream_stats.calls, 8);
	CHECK_EQ(stream_stats.messages, 16);
	int32_t id = h2_peer_start(p, ADD, NULL);
	send_bulk_start(p, id);
	send_chunk(p, id, 16000, 3, 3);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_unsent(p, id), 0);
	check_add(p, id, 3, 6, 39000);
	if (test_failed_flag)
		return;
	for (int i = 0; i < 8; i++)
		h2_peer_close_send(p, bulk[i]);
	CHECK_EQ(h2_pump(p, s), 0);
	for (int i = 0; i < 8; i++) {
		CHECK_EQ(h2_peer_result(p, bulk[i])->grpc_status, 0);
		CHECK_EQ(h2_result_messages(h2_peer_result(p, bulk[i])), 2);
	}
	CHECK_EQ(rpc_server_session_buffered(s), 0);
}

/* A stream opened before the client has our SETTINGS may send HTTP/2's
 * 65535 bytes; a raise to 1 MiB then, and the SETTINGS' 16 KiB applied
 * after it, leave the window 49151 bytes short of 1 MiB. A message between
 * that and 1 MiB was taken for one that fits, and waited for ever. */
TEST(message_just_under_a_raised_window_before_the_settings_arrives)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	const size_t big = 1024 * 1024 - 30000;
	int32_t id = h2_peer_start(p, ADD, NULL);

	send_chunk(p, id, 7000, 1, 1);
	send_chunk(p, id, 60000, 2, 2);
	send_chunk(p, id, big, 3, 3);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_unsent(p, id), 0);
	check_add(p, id, 3, 6, (int64_t)(7000 + 60000 + big));
	if (test_failed_flag)
		return;
	CHECK_EQ(rpc_server_session_buffered(s), 0);
	CHECK(max_buffered <= 1024 * 1024);
}

/* Resumed from outside the session with nothing whole to deliver: the
 * bytes given back before the pause are announced then (no more request
 * data is coming to do it). */
TEST(message_of_most_of_the_base_window_arrives_after_a_pause)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();

	CHECK_EQ(h2_pump(p, s), 0);
	int32_t id = h2_peer_start(p, ECHO, NULL);
	stream_pause_echo = true;
	send_bulk_start(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(stream_stats.messages, 1);
	CHECK(stream_stats.echo);
	CHECK(h2_peer_unsent(p, id) > 0);
	stream_pause_echo = false;
	rpc_call_resume_receiving(stream_stats.echo);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_unsent(p, id), 0);
	CHECK_EQ(stream_stats.messages, 2);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	struct h2_result *r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, 0);
	CHECK_EQ(h2_result_messages(r), 2);
	Streamtest__Chunk *c = reply_chunk(p, id, 1);
	bool same = chunk_is(c, 16000, 2, 2);
	streamtest__chunk__free_unpacked(c, NULL);
	CHECK(same);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
}

/* count messages of size bytes on one Add call, sent in bulk before
 * the server reads: every one delivered and added up; *ret_updates: the
 * WINDOW_UPDATEs the peer got for the stream (max_buffered: the most the
 * server held). */
static void upload_in_bulk(size_t size, size_t count, unsigned *ret_updates)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();

	CHECK_EQ(h2_pump(p, s), 0);
	int32_t id = h2_peer_start(p, ADD, NULL);
	for (size_t i = 0; i < count; i++)
		send_chunk(p, id, size, 1, (int)i);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	check_add(p, id, (int64_t)count, (int64_t)count, (int64_t)(count * size));
	if (test_failed_flag)
		return;
	*ret_updates = h2_peer_window_updates(p, id);
	fprintf(stderr, "# %zu x %zu bytes: %u WINDOW_UPDATEs, at most %zu bytes buffered\n", count, size, *ret_updates,
		max_buffered);
}

/* Messages larger than the base window (grpcio's users send 64 KiB to
 * 1 MiB, maitctl 128 KiB) come through a raised window, not a reservation
 * of each with 16 KiB in flight: a WINDOW_UPDATE for every 8 KiB made each
 * wait for a round trip (an upload of 96 KiB messages ran at a fifth of
 * the socket's speed). 6 MiB in 96 KiB messages: a few updates per MiB. */
TEST(large_messages_come_through_a_raised_window)
{
	const size_t size = 96 * 1024;
	unsigned updates;

	upload_in_bulk(size, 64, &updates);
	if (test_failed_flag)
		return;
	/* One per half window (512 KiB) of the 6 MiB, and the raise. */
	CHECK(updates <= 16);
	CHECK(max_buffered <= 1024 * 1024);
}

/* Small messages sent in bulk (a tree of 1-8 KiB files) are delivered as
 * they come, so half the window never waits unread: the window stayed
 * 16 KiB, and each window's worth waited for a WINDOW_UPDATE's round
 * trip (500 of them for these 6 MiB). The peer waiting on the window is
 * what raises it now. */
TEST(small_messages_in_bulk_come_through_a_raised_window)
{
	const size_t size = 5000;
	unsigned updates;

	upload_in_bulk(size, 1200, &updates);
	if (test_failed_flag)
		return;
	CHECK(updates <= 24);
	CHECK(max_buffered <= 1024 * 1024);
}

/* A message larger than the raised window is reserved whole, and comes
 * with the raised window in flight (its bytes given back as they come). */
TEST(messages_over_the_raised_window_come_with_1_mib_in_flight)
{
	const size_t size = 2 * 1024 * 1024;
	unsigned updates;

	upload_in_bulk(size, 4, &updates);
	if (test_failed_flag)
		return;
	/* One per half window of the 8 MiB, and the raise (16 KiB in flight:
	 * one per 8 KiB, 1024). */
	CHECK(updates <= 24);
	/* The message being decoded and at most the window beyond it. */
	CHECK(max_buffered <= size + 5 + 1024 * 1024);
}

/* A message waiting for the budget because raised windows hold it (no
 * reservation anywhere) is admitted once they are given back: only a
 * reservation given back let waiting messages in, so this one waited
 * for its deadline. A budget of 2 MiB: one raised window (1 MiB, the
 * pool) and a message of 1.5 MiB do not fit together. */
TEST(a_message_waiting_on_raised_windows_is_admitted_when_they_end)
{
	struct rpc_limits l;
	rpc_limits_init(&l);
	l.max_buffered = l.max_concurrent_streams * 16 * 1024 + 2 * 1024 * 1024;
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session_limited(&l);
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	const size_t big = 1536 * 1024;

	CHECK_EQ(h2_pump(p, s), 0);
	int32_t bulk = h2_peer_start(p, ECHO, NULL);
	send_bulk_start(p, bulk);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(stream_stats.messages, 2);
	int32_t id = h2_peer_start(p, ADD, NULL);
	send_chunk(p, id, big, 1, 1);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	/* Waiting: the window shut, the rest held back by the peer. */
	CHECK(h2_peer_unsent(p, id) > 0);
	CHECK(!h2_peer_result(p, id)->closed);
	h2_peer_close_send(p, bulk);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_result(p, bulk)->grpc_status, 0);
	CHECK_EQ(h2_peer_unsent(p, id), 0);
	check_add(p, id, 1, 1, (int64_t)big);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
}

/* --- data messages taken in place ----------------------------------------- */

/* A Chunk that is data alone (value 0) is handed over undecoded, read in
 * place (rpc_call_set_data_receiver); one with a value is decoded, as is
 * the first (the handler's). Compressed ones are inflated first. */
TEST(data_messages_are_taken_in_place)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();
	size_t cap = 1024 * 1024, n, z, bytes = 100;
	uint8_t *out = malloc(cap);

	stream_raw_add = true;
	h2_peer_set_header(p, "grpc-encoding", "gzip");
	CHECK_EQ(h2_pump(p, s), 0);
	int32_t id = h2_peer_start(p, ADD, NULL);
	send_chunk(p, id, 100, 0, 1);
	for (int i = 0; i < 20; i++) {
		send_chunk(p, id, 128 * 1024 - i, 0, i);
		bytes += 128 * 1024 - (size_t)i;
	}
	for (int i = 0; i < 3; i++) {
		send_chunk(p, id, 1000, 1, i);
		bytes += 1000;
	}
	uint8_t *m = chunk(5000, 0, 3, &n);
	z = compress_msg(out, cap, m, n, true);
	h2_peer_send_msg(p, id, out, z, true);
	bytes += 5000;
	free(m);
	free(out);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	check_add(p, id, 25, 3, (int64_t)bytes);
	CHECK_EQ(stream_stats.raw, 21);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
	h2_peer_set_header(p, NULL, NULL);
}

/* Bytes that look like the data field and are not (a length past the
 * message's end, a length that never ends, another field after it) are
 * never taken in place: decoded, they are refused or delivered whole. */
TEST(malformed_data_messages_are_decoded_not_taken)
{
	static const uint8_t past_end[] = { 0x0a, 0x05, 'a', 'b' };
	static const uint8_t endless[] = { 0x0a, 0xff, 0xff, 0xff };
	static const uint8_t huge[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'a' };
	static const uint8_t then_value[] = { 0x0a, 0x01, 'a', 0x10, 0x05 };
	static const uint8_t other_field[] = { 0x12, 0x01, 'a' };
	const struct {
		const uint8_t *msg;
		size_t len;
		int code;
	} cases[] = {
		{ past_end, sizeof(past_end), RPC_INVALID_ARGUMENT },
		{ endless, sizeof(endless), RPC_INVALID_ARGUMENT },
		{ huge, sizeof(huge), RPC_INVALID_ARGUMENT },
		{ then_value, sizeof(then_value), RPC_OK },
		{ other_field, sizeof(other_field), RPC_INVALID_ARGUMENT },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
		_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();

		stream_raw_add = true;
		CHECK_EQ(h2_pump(p, s), 0);
		int32_t id = h2_peer_start(p, ADD, NULL);
		send_chunk(p, id, 10, 0, 1);
		h2_peer_send_msg(p, id, cases[i].msg, cases[i].len, false);
		h2_peer_close_send(p, id);
		CHECK_EQ(h2_pump(p, s), 0);
		struct h2_result *r = h2_peer_result(p, id);
		CHECK_EQ(r->grpc_status, cases[i].code);
		CHECK_EQ(stream_stats.raw, 0);
		if (cases[i].code == RPC_OK)
			check_add(p, id, 2, 5, 11);
		CHECK_EQ(rpc_server_session_buffered(s), 0);
	}
}

/* The data callback ends the call: what it was handed, and the stream's
 * buffer, are not touched afterwards (the sanitizer build watches), and
 * the rest of the stream is dropped. */
TEST(a_data_callback_may_end_the_call)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(h2_peer_freep) struct h2_peer *p = h2_peer_new();

	stream_raw_add = true;
	CHECK_EQ(h2_pump(p, s), 0);
	int32_t id = h2_peer_start(p, ADD, NULL);
	send_chunk(p, id, 10, 0, 1);
	send_chunk(p, id, 100 * 1024, 0, 2);
	send_chunk(p, id, 100 * 1024, 0, 0xEE);
	for (int i = 0; i < 8; i++)
		send_chunk(p, id, 100 * 1024, 0, 3);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	struct h2_result *r = h2_peer_result(p, id);
	CHECK_EQ(r->grpc_status, RPC_FAILED_PRECONDITION);
	CHECK_EQ(stream_stats.raw, 2);
	CHECK_EQ(stream_stats.cancelled, 0);
	CHECK_EQ(rpc_server_session_buffered(s), 0);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
}

/* --- the client core against the server core ------------------------------ */

struct cl {
	int done, code, messages, writable;
	char message[256];
	size_t bytes;
	Streamtest__Sum sum;
	int64_t last_value;
};

static void cl_message(struct rpc_client_call *c, const uint8_t *data, size_t len, void *ud)
{
	struct cl *x = ud;
	Streamtest__Chunk *ch = streamtest__chunk__unpack(NULL, len, data);
	x->messages++;
	x->bytes += len;
	if (ch) {
		x->last_value = ch->value;
		streamtest__chunk__free_unpacked(ch, NULL);
	}
	Streamtest__Sum *sum = streamtest__sum__unpack(NULL, len, data);
	if (sum) {
		x->sum.total = sum->total;
		x->sum.count = sum->count;
		streamtest__sum__free_unpacked(sum, NULL);
	}
}

static void cl_writable(struct rpc_client_call *c, void *ud)
{
	((struct cl *)ud)->writable++;
}

static void cl_done(struct rpc_client_call *c, int code, const char *message, void *ud)
{
	struct cl *x = ud;
	x->done++;
	x->code = code;
	snprintf(x->message, sizeof(x->message), "%s", message);
}

static const struct rpc_client_stream_ops cl_ops = { cl_message, cl_writable, cl_done };

/* Moves bytes between the two cores until both are quiet. */
static void pump2(struct rpc_client_session *c, struct rpc_server_session *s)
{
	for (int round = 0; round < 1000000; round++) {
		const uint8_t *d;
		ssize_t n;
		bool moved = false;
		while ((n = rpc_client_session_pull(c, &d)) > 0) {
			moved = true;
			rpc_server_session_feed(s, d, (size_t)n, now_usec());
			track_buffered(s);
		}
		while ((n = rpc_server_session_pull(s, &d)) > 0) {
			moved = true;
			rpc_client_session_feed(c, d, (size_t)n);
		}
		if (!moved)
			return;
	}
}

static int client_send_chunk(struct rpc_client_call *call, size_t len, int64_t value)
{
	Streamtest__Chunk ch = STREAMTEST__CHUNK__INIT;
	uint8_t *data = calloc(1, len + 1);
	ch.data.data = data;
	ch.data.len = len;
	ch.value = value;
	int r = rpc_client_call_send(call, &ch.base);
	free(data);
	return r;
}

TEST(client_core_echo_add_and_countdown)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(rpc_client_session_freep) struct rpc_client_session *c = NULL;
	struct rpc_client_call *echo, *add, *cd;
	struct cl e = { 0 }, a = { 0 }, d = { 0 };
	Streamtest__Count req = STREAMTEST__COUNT__INIT;

	CHECK_EQ(rpc_client_session_new(&c), 0);
	CHECK_EQ(rpc_client_session_start(c, ECHO, 0, &cl_ops, &e, &echo), 0);
	CHECK_EQ(rpc_client_session_start(c, ADD, 0, &cl_ops, &a, &add), 0);
	CHECK_EQ(rpc_client_session_start(c, COUNTDOWN, 0, &cl_ops, &d, &cd), 0);
	for (int i = 1; i <= 10; i++) {
		CHECK_EQ(client_send_chunk(echo, 100 * 1024, i), 0);
		CHECK_EQ(client_send_chunk(add, 10, i), 0);
	}
	req.from = 500;
	req.size = 1000;
	CHECK_EQ(rpc_client_call_send(cd, &req.base), 0);
	CHECK_EQ(rpc_client_call_close_send(cd), 0);
	pump2(c, s);
	CHECK_EQ(e.messages, 10); /* echoed before the half-close */
	CHECK_EQ(e.done, 0);
	CHECK_EQ(d.done, 1);
	CHECK_EQ(d.code, 0);
	CHECK_EQ(d.messages, 500);
	CHECK_EQ(d.last_value, 1);
	CHECK_EQ(rpc_client_call_close_send(echo), 0);
	CHECK_EQ(rpc_client_call_close_send(add), 0);
	pump2(c, s);
	CHECK_EQ(e.done, 1);
	CHECK_EQ(e.code, 0);
	CHECK_EQ(a.done, 1);
	CHECK_EQ(a.code, 0);
	CHECK_EQ(a.sum.total, 55);
	CHECK_EQ(a.sum.count, 10);
	CHECK_EQ(rpc_client_session_pending_calls(c), 0);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
}

TEST(client_core_send_back_pressure_and_cancel)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(rpc_client_session_freep) struct rpc_client_session *c = NULL;
	struct rpc_client_call *echo;
	struct cl e = { 0 };
	int i, r = 0;

	CHECK_EQ(rpc_client_session_new(&c), 0);
	CHECK_EQ(rpc_client_session_start(c, ECHO, 0, &cl_ops, &e, &echo), 0);
	stream_pause_echo = true;
	CHECK_EQ(client_send_chunk(echo, 1000, 0), 0);
	pump2(c, s);
	CHECK(stream_stats.echo);
	/* The server does not read: the client's queue fills to high water. */
	for (i = 0; i < 100 && r == 0; i++) {
		r = client_send_chunk(echo, 64 * 1024, i);
		pump2(c, s);
	}
	CHECK_EQ(r, 1);
	CHECK(i > 16); /* about 1 MiB of window on the way, then 1 MiB queued */
	CHECK_EQ(e.writable, 0);
	CHECK(max_buffered <= 1024 * 1024);
	rpc_call_resume_receiving(stream_stats.echo);
	stream_pause_echo = false;
	pump2(c, s);
	CHECK_EQ(e.writable, 1);
	CHECK_EQ(e.messages, i + 1);
	/* A cancel reaches the handler once. */
	rpc_client_call_cancel(echo);
	CHECK_EQ(e.done, 1);
	CHECK_EQ(e.code, RPC_CANCELLED);
	pump2(c, s);
	CHECK_EQ(stream_stats.cancelled, 1);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
}

TEST(client_core_deadline_mid_stream)
{
	_cleanup_(rpc_server_session_freep) struct rpc_server_session *s = new_session();
	_cleanup_(rpc_client_session_freep) struct rpc_client_session *c = NULL;
	struct rpc_client_call *echo;
	struct cl e = { 0 };

	CHECK_EQ(rpc_client_session_new(&c), 0);
	CHECK_EQ(rpc_client_session_start(c, ECHO, 50000, &cl_ops, &e, &echo), 0);
	CHECK_EQ(client_send_chunk(echo, 10, 1), 0);
	pump2(c, s);
	CHECK_EQ(e.messages, 1);
	usleep(60000);
	rpc_client_session_expire(c, now_usec());
	CHECK_EQ(e.done, 1);
	CHECK_EQ(e.code, RPC_DEADLINE_EXCEEDED);
	pump2(c, s);
	CHECK_EQ(stream_stats.cancelled, 1);
}
