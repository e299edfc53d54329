/* rpc/channel.c against an in-process rpc_server serving the streamtest
 * service (stream-service.c) on a unix socket, both in one loop: many calls
 * of every kind at once on one connection, calls made before it is up, the
 * server going away under them, the channel freed from inside a call's
 * callback and outside the loop, nobody listening. */
#include "base/time-util.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "stream-service.h"
#include "streamtest.pb-c.h"
#include "test.h"

#define GUARD_USEC (30 * USEC_PER_SEC)

static struct loop *L;
static struct rpc_server *srv;
static char dir[64], spec[128];
static unsigned max_connections;

static int server_start(void)
{
	struct rpc_server_config cfg;
	struct addr a;
	int r;

	stream_service_reset();
	max_connections = 0;
	snprintf(dir, sizeof(dir), "/tmp/valet-test-channel-XXXXXX");
	if (!mkdtemp(dir))
		return -errno;
	snprintf(spec, sizeof(spec), "unix:%s/s", dir);
	r = loop_new(&L);
	if (r < 0)
		return r;
	rpc_server_config_init(&cfg, &stream_service);
	r = rpc_server_new(L, &cfg, &srv);
	if (r < 0)
		return r;
	r = addr_parse(spec, &a);
	if (r < 0)
		return r;
	return rpc_server_listen(srv, &a);
}

static void server_done(void)
{
	char path[96];
	rpc_server_free(srv);
	srv = NULL;
	loop_free(L);
	snprintf(path, sizeof(path), "%s/s", dir);
	(void)unlink(path);
	(void)rmdir(dir);
}

/* One call's record; `pending` counts the calls not done yet. */
struct rec {
	struct rpc_client_call *call;
	int done, code, messages;
	int64_t last_value;
	char message[256];
};

static int pending;
static struct rpc_channel *free_on_first_message;

static void note_connections(void)
{
	if (srv && rpc_server_connections(srv) > max_connections)
		max_connections = rpc_server_connections(srv);
}

static void on_message(struct rpc_client_call *c, const uint8_t *data, size_t len, void *ud)
{
	struct rec *r = ud;
	Streamtest__Chunk *ch = streamtest__chunk__unpack(NULL, len, data);

	note_connections();
	r->messages++;
	if (ch) {
		r->last_value = ch->value;
		streamtest__chunk__free_unpacked(ch, NULL);
	}
	if (free_on_first_message) {
		rpc_channel_free(free_on_first_message);
		free_on_first_message = NULL;
	}
	loop_exit(L, 0); /* run_until() looks at its condition */
}

static void on_done(struct rpc_client_call *c, int code, const char *message, void *ud)
{
	struct rec *r = ud;
	r->done++;
	r->code = code;
	snprintf(r->message, sizeof(r->message), "%s", message);
	if (--pending == 0)
		loop_exit(L, 0);
}

static const struct rpc_client_stream_ops ops = { .on_message = on_message, .on_done = on_done };

static void on_reply(int code, const char *message, const uint8_t *data, size_t len, void *ud)
{
	struct rec *r = ud;
	on_message(NULL, data, len, ud);
	on_done(NULL, code, message, ud);
	(void)r;
}

static int closed, closed_code;
static char closed_message[256];

static void on_closed(int code, const char *message, void *ud)
{
	closed++;
	closed_code = code;
	snprintf(closed_message, sizeof(closed_message), "%s", message);
	loop_exit(L, 0);
}

static bool hung;

static void on_guard(struct loop_timer *t, void *ud)
{
	hung = true;
	loop_exit(L, 0);
}

/* Runs the loop until `until` holds or 30 s pass. */
static int run_until(bool (*until)(void))
{
	struct loop_timer *guard;
	int r = loop_add_timer(L, now_usec() + GUARD_USEC, on_guard, NULL, &guard);
	if (r < 0)
		return r;
	hung = false;
	while (!until() && !hung)
		(void)loop_run(L);
	loop_timer_free(guard);
	return hung ? -ETIMEDOUT : 0;
}

static bool all_done(void)
{
	return pending == 0;
}

static struct rec *first_echo;

static bool echoed(void)
{
	return first_echo->messages > 0;
}

static bool channel_closed(void)
{
	return closed > 0;
}

static int open_channel(struct rpc_channel **ret)
{
	struct addr a;
	int r = addr_parse(spec, &a);
	if (r < 0)
		return r;
	closed = 0;
	return rpc_channel_open(L, &a, 5 * USEC_PER_SEC, on_closed, NULL, ret);
}

static int echo(struct rpc_channel *ch, struct rec *r, int n)
{
	Streamtest__Chunk c = STREAMTEST__CHUNK__INIT;
	int k = rpc_client_session_start(rpc_channel_session(ch), "/streamtest.Stream/Echo", 0, &ops, r, &r->call);
	if (k < 0)
		return k;
	pending++;
	for (int i = 1; i <= n; i++) {
		c.value = i;
		k = rpc_client_call_send(r->call, &c.base);
		if (k < 0)
			return k;
	}
	return rpc_client_call_close_send(r->call);
}

TEST(many_calls_of_every_kind_share_one_connection)
{
	struct rpc_channel *ch = NULL;
	struct rec e[40] = { 0 }, d[10] = { 0 }, u[10] = { 0 };
	Streamtest__Count req = STREAMTEST__COUNT__INIT;

	CHECK_EQ(server_start(), 0);
	pending = 0;
	CHECK_EQ(open_channel(&ch), 0);
	CHECK(!rpc_channel_connected(ch));
	/* All made before the connection is up: they wait for it. */
	for (int i = 0; i < 40; i++)
		CHECK_EQ(echo(ch, &e[i], i + 1), 0);
	for (int i = 0; i < 10; i++) {
		req.from = 100 + i;
		req.size = 1000;
		CHECK_EQ(rpc_client_session_start(rpc_channel_session(ch), "/streamtest.Stream/Countdown", 0, &ops,
						  &d[i], &d[i].call),
			 0);
		pending++;
		CHECK_EQ(rpc_client_call_send(d[i].call, &req.base), 0);
		CHECK_EQ(rpc_client_call_close_send(d[i].call), 0);
		/* A unary call of a server-streaming method: one message. */
		req.from = 1;
		CHECK_EQ(rpc_client_session_call(rpc_channel_session(ch), "/streamtest.Stream/Countdown", &req.base,
						 5 * USEC_PER_SEC, on_reply, &u[i]),
			 0);
		pending++;
	}
	CHECK_EQ(run_until(all_done), 0);
	CHECK(rpc_channel_connected(ch));
	for (int i = 0; i < 40; i++) {
		CHECK_EQ(e[i].code, RPC_OK);
		CHECK_EQ(e[i].messages, i + 1);
		CHECK_EQ(e[i].last_value, i + 1);
	}
	for (int i = 0; i < 10; i++) {
		CHECK_EQ(d[i].code, RPC_OK);
		CHECK_EQ(d[i].messages, 100 + i);
		CHECK_EQ(d[i].last_value, 1);
		CHECK_EQ(u[i].code, RPC_OK);
		CHECK_EQ(u[i].messages, 1);
	}
	CHECK_EQ(max_connections, 1u);
	CHECK_EQ(stream_stats.calls, 60);
	/* Later calls go on the same connection. */
	CHECK_EQ(echo(ch, &e[0], 3), 0);
	CHECK_EQ(run_until(all_done), 0);
	CHECK_EQ(e[0].code, RPC_OK);
	CHECK_EQ(max_connections, 1u);
	CHECK_EQ(closed, 0);
	rpc_channel_free(ch); /* outside the loop: at once */
	server_done();
}

TEST(server_gone_answers_the_calls_then_closes)
{
	struct rpc_channel *ch = NULL;
	struct rec e = { 0 };
	Streamtest__Chunk c = STREAMTEST__CHUNK__INIT;

	CHECK_EQ(server_start(), 0);
	pending = 0;
	CHECK_EQ(open_channel(&ch), 0);
	/* An Echo left open (no half-close), then the server goes. */
	CHECK_EQ(rpc_client_session_start(rpc_channel_session(ch), "/streamtest.Stream/Echo", 0, &ops, &e, &e.call), 0);
	pending++;
	CHECK_EQ(rpc_client_call_send(e.call, &c.base), 0);
	first_echo = &e;
	CHECK_EQ(run_until(echoed), 0);
	CHECK_EQ(e.messages, 1);
	rpc_server_free(srv);
	srv = NULL;
	CHECK_EQ(run_until(channel_closed), 0);
	CHECK_EQ(e.done, 1);
	CHECK_EQ(e.code, RPC_UNAVAILABLE);
	CHECK_EQ(closed, 1);
	CHECK_EQ(closed_code, RPC_UNAVAILABLE);
	CHECK(strstr(closed_message, "connection closed") != NULL);
	server_done(); /* the channel freed itself */
}

TEST(freed_from_inside_a_call_answers_every_call)
{
	struct rpc_channel *ch = NULL;
	struct rec e[3] = { 0 };

	CHECK_EQ(server_start(), 0);
	pending = 0;
	CHECK_EQ(open_channel(&ch), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(echo(ch, &e[i], 1000), 0);
	free_on_first_message = ch;
	CHECK_EQ(run_until(all_done), 0);
	CHECK(free_on_first_message == NULL);
	int messages = 0;
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(e[i].done, 1);
		messages += e[i].messages;
	}
	CHECK(messages >= 1);
	/* At least the calls cut short by the free say so. */
	int cut = 0;
	for (int i = 0; i < 3; i++)
		cut += e[i].code == RPC_UNAVAILABLE && strcmp(e[i].message, "channel closed") == 0;
	CHECK(cut >= 1);
	CHECK_EQ(closed, 0);
	/* The memory goes at the end of the round (ASan checks). */
	struct loop_timer *t;
	CHECK_EQ(loop_add_timer(L, now_usec() + 50 * USEC_PER_MSEC, on_guard, NULL, &t), 0);
	(void)loop_run(L);
	loop_timer_free(t);
	server_done();
}

TEST(nobody_listening_closes_with_unavailable)
{
	struct rpc_channel *ch = NULL;
	struct rec u = { 0 };
	Streamtest__Count req = STREAMTEST__COUNT__INIT;
	struct addr a;

	CHECK_EQ(server_start(), 0);
	pending = 0;
	/* TCP on a loopback port nobody listens on: the refusal comes from the
	 * loop, not from rpc_channel_open(). */
	CHECK_EQ(addr_parse("tcp:127.0.0.1:1", &a), 0);
	closed = 0;
	CHECK_EQ(rpc_channel_open(L, &a, 5 * USEC_PER_SEC, on_closed, NULL, &ch), 0);
	req.from = 1;
	CHECK_EQ(rpc_client_session_call(rpc_channel_session(ch), "/streamtest.Stream/Countdown", &req.base, 0,
					 on_reply, &u),
		 0);
	pending++;
	CHECK_EQ(run_until(channel_closed), 0);
	CHECK_EQ(u.done, 1);
	CHECK_EQ(u.code, RPC_UNAVAILABLE);
	CHECK(strstr(u.message, "cannot connect to tcp:127.0.0.1:1") != NULL);
	CHECK_EQ(closed_code, RPC_UNAVAILABLE);
	server_done();
}

/* rpc_client_call_pause_receiving(): a paused call gives no window back,
 * so the server stops once the stream's window (1 MiB) is used up, its
 * handler blocked on its send queue; resuming lets everything through. */
static struct rec paused_rec;
static bool pause_now = true;

static void on_message_pausing(struct rpc_client_call *c, const uint8_t *data, size_t len, void *ud)
{
	if (pause_now) {
		rpc_client_call_pause_receiving(c);
		pause_now = false;
	}
	on_message(c, data, len, ud);
}

static const struct rpc_client_stream_ops pausing_ops = { .on_message = on_message_pausing, .on_done = on_done };

static bool server_blocked(void)
{
	return stream_stats.high_water > 0 || paused_rec.done;
}

TEST(a_paused_call_stops_the_server_until_resumed)
{
	struct rpc_channel *ch = NULL;
	Streamtest__Count req = STREAMTEST__COUNT__INIT;
	enum { N = 200, SIZE = 64 * 1024 };

	CHECK_EQ(server_start(), 0);
	CHECK_EQ(open_channel(&ch), 0);
	paused_rec = (struct rec){ 0 };
	pause_now = true;
	pending = 1;
	req.from = N;
	req.size = SIZE;
	CHECK_EQ(rpc_client_session_start(rpc_channel_session(ch), "/streamtest.Stream/Countdown", 0, &pausing_ops,
					  &paused_rec, &paused_rec.call),
		 0);
	CHECK_EQ(rpc_client_call_send(paused_rec.call, &req.base), 0);
	CHECK_EQ(rpc_client_call_close_send(paused_rec.call), 0);
	/* The server fills its queue (1 MiB) behind the shut window... */
	CHECK_EQ(run_until(server_blocked), 0);
	int messages = -1, writable = -1;
	for (int i = 0; i < 50; i++) {
		struct loop_timer *t;
		if (i == 25) {
			messages = paused_rec.messages;
			writable = stream_stats.writable;
		}
		CHECK_EQ(loop_add_timer(L, now_usec() + 2000, on_guard, NULL, &t), 0);
		(void)loop_run(L);
		loop_timer_free(t);
	}
	/* ...and stays blocked: nothing more arrives, nothing drains. */
	CHECK_EQ(paused_rec.done, 0);
	CHECK_EQ(paused_rec.messages, messages);
	CHECK_EQ(stream_stats.writable, writable);
	/* What arrived after the pause: at most the stream's window (1 MiB of
	 * 64 KiB messages, and the first one). */
	CHECK(paused_rec.messages >= 1);
	CHECK(paused_rec.messages <= 1024 * 1024 / SIZE + 1);
	int before = paused_rec.messages;
	rpc_client_call_resume_receiving(paused_rec.call);
	CHECK_EQ(run_until(all_done), 0);
	CHECK(stream_stats.writable > writable);
	CHECK_EQ(paused_rec.code, RPC_OK);
	CHECK_EQ(paused_rec.messages, N);
	CHECK(paused_rec.messages > before);
	CHECK_EQ(paused_rec.last_value, 1);
	rpc_channel_free(ch);
	server_done();
}
