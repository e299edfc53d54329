/* Allocation-failure sweep over streaming calls through the server core
 * (the streamtest service, stream-service.c), driven by a real HTTP/2
 * client in memory: for every N, the N-th allocation fails. Each run must
 * end every call with a status or a reset (or drop the connection), hear
 * of every call it started exactly once (finished or cancelled), leak
 * nothing, and the next call must be served. */
#include "failmalloc.h"
#include "h2-peer.h"
#include "rpc/client-session.h"
#include "rpc/server-session.h"
#include "stream-service.h"
#include "streamtest.pb-c.h"
#include "test.h"

static uint8_t small[64], mid[20 * 1024 + 16], count[16], part[7000 + 16], most[16000 + 16];
static size_t small_len, mid_len, count_len, part_len, most_len;

static size_t pack_chunk(uint8_t *out, size_t data_len, int64_t value)
{
	static uint8_t data[20 * 1024];
	Streamtest__Chunk c = STREAMTEST__CHUNK__INIT;
	c.data.data = data;
	c.data.len = data_len;
	c.value = value;
	return streamtest__chunk__pack(&c, out);
}

static void bodies(void)
{
	Streamtest__Count c = STREAMTEST__COUNT__INIT;
	small_len = pack_chunk(small, 10, 1);
	mid_len = pack_chunk(mid, 20 * 1024, 2);
	part_len = pack_chunk(part, 7000, 3);
	most_len = pack_chunk(most, 16000, 4);
	c.from = 4;
	c.size = 100;
	count_len = streamtest__count__pack(&c, count);
}

static bool session_dead(struct rpc_server_session *s, int fed)
{
	const uint8_t *d;
	return fed < 0 || rpc_server_session_pull(s, &d) < 0 || !rpc_server_session_alive(s);
}

static bool answered(struct h2_result *r)
{
	return r->closed && (r->grpc_status >= 0 || r->rst_code != 0);
}

/* A bidi echo (a message over the base window, a pause and a resume from
 * outside), a client stream, a server stream, an empty client stream, a
 * bidi call reset mid-stream, then a graceful stop. */
static void scenario(unsigned long n, unsigned long *ret_count)
{
	struct rpc_server_session *s = NULL;
	struct h2_peer *p = h2_peer_new();
	int32_t ids[5];
	int fed, r;

	stream_service_reset();
	failmalloc_arm(n);
	r = rpc_server_session_new(&stream_service, NULL, NULL, NULL, &s);
	if (r < 0) {
		*ret_count = failmalloc_disarm();
		CHECK_EQ(r, -ENOMEM);
		s = NULL;
	} else {
		ids[0] = h2_peer_start(p, "/streamtest.Stream/Echo", NULL);
		ids[1] = h2_peer_start(p, "/streamtest.Stream/Add", NULL);
		ids[2] = h2_peer_start(p, "/streamtest.Stream/Countdown", NULL);
		ids[3] = h2_peer_start(p, "/streamtest.Stream/Add", NULL);
		ids[4] = h2_peer_start(p, "/streamtest.Stream/Echo", NULL);
		stream_pause_echo = true;
		h2_peer_send_msg(p, ids[0], small, small_len, false);
		h2_peer_send_msg(p, ids[0], mid, mid_len, false);
		h2_peer_send_msg(p, ids[0], small, small_len, false);
		h2_peer_close_send(p, ids[0]);
		h2_peer_send_msg(p, ids[1], small, small_len, false);
		h2_peer_send_msg(p, ids[1], mid, mid_len, false);
		h2_peer_close_send(p, ids[1]);
		h2_peer_send_msg(p, ids[2], count, count_len, false);
		h2_peer_close_send(p, ids[2]);
		h2_peer_close_send(p, ids[3]);
		fed = h2_pump(p, s);
		stream_pause_echo = false;
		if (fed >= 0 && stream_stats.echo) {
			rpc_call_resume_receiving(stream_stats.echo);
			fed = h2_pump(p, s);
		}
		h2_peer_send_msg(p, ids[4], small, small_len, false);
		if (fed >= 0)
			fed = h2_pump(p, s);
		if (fed >= 0) {
			h2_peer_reset(p, ids[4]);
			fed = h2_pump(p, s);
		}
		bool dead_before_stop = session_dead(s, fed);
		rpc_server_session_shutdown(s);
		int fed_after_stop = h2_pump(p, s);
		*ret_count = failmalloc_disarm();
		CHECK(session_dead(s, fed_after_stop) || rpc_server_session_pending_calls(s) == 0);
		if (!dead_before_stop) {
			for (int i = 0; i < 4; i++)
				CHECK(answered(h2_peer_result(p, ids[i])));
			CHECK_EQ(rpc_server_session_pending_calls(s), 0);
			if (!failmalloc_injected()) {
				CHECK_EQ(h2_peer_result(p, ids[0])->grpc_status, 0);
				CHECK_EQ(h2_result_messages(h2_peer_result(p, ids[0])), 3);
				CHECK_EQ(h2_peer_result(p, ids[1])->grpc_status, 0);
				CHECK_EQ(h2_peer_result(p, ids[2])->grpc_status, 0);
				CHECK_EQ(h2_result_messages(h2_peer_result(p, ids[2])), 4);
				CHECK_EQ(h2_peer_result(p, ids[3])->grpc_status, RPC_INVALID_ARGUMENT);
				CHECK_EQ(stream_stats.cancelled, 1);
			}
		}
		rpc_server_session_free(TAKE_PTR(s));
		/* Every call started was heard of once: finished or cancelled
		 * (stream-service frees its state on either; ASan sees leaks). */
		CHECK_EQ(stream_stats.echo, NULL);
	}
	h2_peer_free(p);
	/* The next call is served, on a new connection. */
	p = h2_peer_new();
	stream_service_reset();
	CHECK_EQ(rpc_server_session_new(&stream_service, NULL, NULL, NULL, &s), 0);
	int32_t id = h2_peer_start(p, "/streamtest.Stream/Echo", NULL);
	h2_peer_send_msg(p, id, mid, mid_len, false);
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, 0);
	CHECK_EQ(h2_result_messages(h2_peer_result(p, id)), 1);
	rpc_server_session_free(s);
	h2_peer_free(p);
}

TEST(sweep_streaming_calls)
{
	bodies();
	unsigned long total = failmalloc_sweep(NULL, scenario, FAILMALLOC_EACH_INJECTED);
	/* nghttp2's session, streams, frames, our streams, calls, receive
	 * buffers, decoded messages, send queues, the handlers' state. */
	CHECK(total > 80);
}

/* A paused echo whose next message is more than the rest of its window
 * (7000 bytes given back, then 16000 wanted): resumed from outside, the
 * given-back bytes are announced (a WINDOW_UPDATE queued outside nghttp2's
 * own flow control); without memory for it the connection ends. */
static void window_scenario(unsigned long n, unsigned long *ret_count)
{
	struct rpc_server_session *s = NULL;
	struct h2_peer *p = h2_peer_new();
	int fed;

	stream_service_reset();
	failmalloc_arm(n);
	if (rpc_server_session_new(&stream_service, NULL, NULL, NULL, &s) < 0) {
		*ret_count = failmalloc_disarm();
		h2_peer_free(p);
		return;
	}
	/* SETTINGS first: the stream then starts with the 16 KiB window. */
	fed = h2_pump(p, s);
	int32_t id = h2_peer_start(p, "/streamtest.Stream/Echo", NULL);
	stream_pause_echo = true;
	h2_peer_send_msg(p, id, part, part_len, false);
	h2_peer_send_msg(p, id, most, most_len, false);
	h2_peer_close_send(p, id);
	if (fed >= 0)
		fed = h2_pump(p, s);
	stream_pause_echo = false;
	if (fed >= 0 && stream_stats.echo) {
		rpc_call_resume_receiving(stream_stats.echo);
		fed = h2_pump(p, s);
	}
	bool dead = session_dead(s, fed);
	*ret_count = failmalloc_disarm();
	if (!dead) {
		CHECK(answered(h2_peer_result(p, id)));
		CHECK_EQ(rpc_server_session_pending_calls(s), 0);
	}
	if (!failmalloc_injected()) {
		CHECK(!dead);
		CHECK_EQ(h2_peer_result(p, id)->grpc_status, 0);
		CHECK_EQ(h2_result_messages(h2_peer_result(p, id)), 2);
	}
	rpc_server_session_free(s);
	CHECK_EQ(stream_stats.echo, NULL);
	h2_peer_free(p);
}

TEST(sweep_a_window_announced_after_a_pause)
{
	bodies();
	unsigned long total = failmalloc_sweep("window", window_scenario, 0);
	CHECK(total > 20);
}

/* A stream receiving large messages one after another (taken in place
 * by a data receiver, so no decoding allocates) takes the same receive
 * buffer back for each, the session's spare, instead of growing a new one
 * from 256 bytes and freeing it per message: above maitred's 128 KiB mmap
 * threshold each was a fresh mapping, its pages faulted in. Counted here:
 * the allocations of 128 KiB or more (2 per message before). */
TEST(large_messages_reuse_one_receive_buffer)
{
	enum { N = 32, SIZE = 200 * 1024 };
	static uint8_t data[SIZE], msg[SIZE + 16];
	Streamtest__Chunk c = STREAMTEST__CHUNK__INIT;
	struct rpc_server_session *s = NULL;
	struct h2_peer *p = h2_peer_new();
	unsigned long large;
	size_t len;

	stream_service_reset();
	stream_raw_add = true;
	c.data.data = data;
	c.data.len = SIZE;
	len = streamtest__chunk__pack(&c, msg);
	CHECK_EQ(rpc_server_session_new(&stream_service, NULL, NULL, NULL, &s), 0);
	CHECK_EQ(h2_pump(p, s), 0);
	int32_t id = h2_peer_start(p, "/streamtest.Stream/Add", NULL);
	failmalloc_count_from(128 * 1024);
	failmalloc_arm(0);
	/* One at a time, as a client sends them when the server keeps up:
	 * the buffer is empty after each. */
	for (int i = 0; i < N; i++) {
		h2_peer_send_msg(p, id, msg, len, false);
		CHECK_EQ(h2_pump(p, s), 0);
	}
	h2_peer_close_send(p, id);
	CHECK_EQ(h2_pump(p, s), 0);
	(void)failmalloc_disarm();
	large = failmalloc_large();
	fprintf(stderr, "# %d messages of %d bytes: %lu allocations of 128 KiB or more\n", N, SIZE, large);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, 0);
	CHECK_EQ(h2_result_messages(h2_peer_result(p, id)), 1);
	CHECK(large <= 4);
	rpc_server_session_free(s);
	h2_peer_free(p);
}

/* --- the client core ------------------------------------------------------- */

struct cl {
	int done, code, messages;
};

static void cl_message(struct rpc_client_call *c, const uint8_t *data, size_t len, void *ud)
{
	((struct cl *)ud)->messages++;
}

static void cl_done(struct rpc_client_call *c, int code, const char *message, void *ud)
{
	((struct cl *)ud)->done++;
	((struct cl *)ud)->code = code;
}

static const struct rpc_client_stream_ops cl_ops = { cl_message, NULL, cl_done };

/* Moves bytes until both cores are quiet; false once either gave up (a
 * session that wants neither to read nor to write is closed by conn.c:
 * the client then sees the connection go). */
static bool pump2(struct rpc_client_session *c, struct rpc_server_session *s)
{
	for (int round = 0; round < 10000; round++) {
		const uint8_t *d;
		ssize_t n;
		bool moved = false;
		while ((n = rpc_client_session_pull(c, &d)) > 0) {
			moved = true;
			if (rpc_server_session_feed(s, d, (size_t)n, 1000000) < 0)
				return false;
		}
		if (n < 0)
			return false;
		while ((n = rpc_server_session_pull(s, &d)) > 0) {
			moved = true;
			if (rpc_client_session_feed(c, d, (size_t)n) < 0)
				return false;
		}
		if (n < 0)
			return false;
		if (!moved)
			return rpc_server_session_alive(s) && rpc_client_session_alive(c);
	}
	return false;
}

/* An echo, a client stream and a server stream from the client core, both
 * cores allocating under the sweep: every call started hears on_done
 * exactly once (from the server, or from the client's abort when the
 * connection is given up), and nothing leaks. */
static void client_scenario(unsigned long n, unsigned long *ret_count)
{
	struct rpc_client_session *c = NULL;
	struct rpc_server_session *s = NULL;
	struct rpc_client_call *calls[3];
	struct cl res[3] = { 0 };
	const char *paths[3] = { "/streamtest.Stream/Echo", "/streamtest.Stream/Add", "/streamtest.Stream/Countdown" };
	bool started[3] = { false };
	Streamtest__Chunk ch = STREAMTEST__CHUNK__INIT;
	Streamtest__Count cnt = STREAMTEST__COUNT__INIT;

	stream_service_reset();
	ch.value = 3;
	cnt.from = 3;
	cnt.size = 10;
	failmalloc_arm(n);
	if (rpc_server_session_new(&stream_service, NULL, NULL, NULL, &s) < 0 || rpc_client_session_new(&c) < 0) {
		*ret_count = failmalloc_disarm();
		rpc_server_session_free(s);
		rpc_client_session_free(c);
		return;
	}
	for (int i = 0; i < 3; i++)
		started[i] = rpc_client_session_start(c, paths[i], 0, &cl_ops, &res[i], &calls[i]) == 0;
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 2; i++)
			if (started[i] && !res[i].done)
				(void)rpc_client_call_send(calls[i], &ch.base);
	if (started[2] && !res[2].done)
		(void)rpc_client_call_send(calls[2], &cnt.base);
	bool alive = pump2(c, s);
	for (int i = 0; i < 3; i++)
		if (started[i] && !res[i].done)
			(void)rpc_client_call_close_send(calls[i]);
	if (alive)
		alive = pump2(c, s);
	if (!alive)
		rpc_client_session_abort(c, RPC_UNAVAILABLE, "connection lost");
	*ret_count = failmalloc_disarm();
	for (int i = 0; i < 3; i++)
		if (started[i])
			CHECK_EQ(res[i].done, 1);
	if (!failmalloc_injected()) {
		CHECK_EQ(res[0].code, 0);
		CHECK_EQ(res[0].messages, 2);
		CHECK_EQ(res[1].code, 0);
		CHECK_EQ(res[2].code, 0);
		CHECK_EQ(res[2].messages, 3);
	}
	rpc_server_session_free(s);
	rpc_client_session_free(c);
	/* Nothing heard twice at the end either. */
	for (int i = 0; i < 3; i++)
		if (started[i])
			CHECK_EQ(res[i].done, 1);
	CHECK_EQ(stream_stats.echo, NULL);
}

TEST(sweep_client_streaming_calls)
{
	unsigned long total = failmalloc_sweep("client", client_scenario, 0);
	CHECK(total > 80);
}
