/* rpc/stream.c against an in-process rpc_server serving the streamtest
 * service (stream-service.c) on a unix socket, both in one loop: the three
 * streaming kinds with the send back-pressure, a deadline mid-stream, a
 * cancel, nobody listening. */
#include <sys/stat.h>

#include "base/time-util.h"
#include "rpc/server.h"
#include "rpc/stream.h"
#include "stream-service.h"
#include "streamtest.pb-c.h"
#include "test.h"

#define GUARD_USEC (30 * USEC_PER_SEC)

static struct loop *L;
static char dir[64], spec[128];

static int server_start(struct rpc_server **ret)
{
	struct rpc_server_config cfg;
	struct addr a;
	int r;

	stream_service_reset();
	snprintf(dir, sizeof(dir), "/tmp/valet-test-stream-XXXXXX");
	if (!mkdtemp(dir))
		return -errno;
	snprintf(spec, sizeof(spec), "unix:%s/s", dir);
	r = loop_new(&L);
	if (r < 0)
		return r;
	rpc_server_config_init(&cfg, &stream_service);
	r = rpc_server_new(L, &cfg, ret);
	if (r < 0)
		return r;
	r = addr_parse(spec, &a);
	if (r < 0)
		return r;
	return rpc_server_listen(*ret, &a);
}

static void server_done(struct rpc_server *srv)
{
	char path[96];
	rpc_server_free(srv);
	loop_free(L);
	snprintf(path, sizeof(path), "%s/s", dir);
	(void)unlink(path);
	(void)rmdir(dir);
}

/* A client that sends `total` messages of `size` bytes as fast as the
 * back-pressure lets it, then half-closes. */
struct client {
	struct rpc_stream_call *sc;
	int to_send, sent, size, writable, high;
	int done, code, messages;
	size_t bytes;
	int64_t last_value;
	char message[256];
	bool cancel_after_first;
};

static void produce(struct client *c)
{
	Streamtest__Chunk ch = STREAMTEST__CHUNK__INIT;
	uint8_t *data = calloc(1, (size_t)c->size + 1);

	ch.data.data = data;
	ch.data.len = (size_t)c->size;
	while (c->sent < c->to_send) {
		ch.value = ++c->sent;
		int r = rpc_stream_call_send(c->sc, &ch.base);
		if (r != 0) {
			c->high += r == 1;
			break;
		}
	}
	free(data);
	if (c->sent == c->to_send)
		(void)rpc_stream_call_close_send(c->sc);
}

static void on_message(struct rpc_stream_call *sc, const uint8_t *data, size_t len, void *ud)
{
	struct client *c = ud;
	Streamtest__Chunk *ch = streamtest__chunk__unpack(NULL, len, data);
	c->messages++;
	c->bytes += len;
	if (ch) {
		c->last_value = ch->value;
		streamtest__chunk__free_unpacked(ch, NULL);
	}
	if (c->cancel_after_first)
		rpc_stream_call_cancel(sc);
}

static void on_writable(struct rpc_stream_call *sc, void *ud)
{
	struct client *c = ud;
	c->writable++;
	produce(c);
}

static void on_done(int code, const char *message, void *ud)
{
	struct client *c = ud;
	c->done++;
	c->code = code;
	snprintf(c->message, sizeof(c->message), "%s", message);
	loop_exit(L, 0);
}

static const struct rpc_stream_call_ops ops = { on_message, on_writable, on_done };

static bool hung;

static void on_guard(struct loop_timer *t, void *ud)
{
	hung = true;
	loop_exit(L, 0);
}

static int run(struct client *c)
{
	struct loop_timer *guard;
	int r = loop_add_timer(L, now_usec() + GUARD_USEC, on_guard, NULL, &guard);
	if (r < 0)
		return r;
	hung = false;
	while (!c->done && !hung)
		(void)loop_run(L);
	loop_timer_free(guard);
	return hung ? -ETIMEDOUT : 0;
}

static int start(struct client *c, const char *method, uint64_t timeout)
{
	char path[64];
	struct addr a;
	int r = addr_parse(spec, &a);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/streamtest.Stream/%s", method);
	return rpc_stream_call_start(L, &a, path, timeout, &ops, c, &c->sc);
}

TEST(echo_64mib_with_back_pressure)
{
	struct rpc_server *srv = NULL;
	struct client c = { .to_send = 64, .size = 1024 * 1024 };

	CHECK_EQ(server_start(&srv), 0);
	CHECK_EQ(start(&c, "Echo", 0), 0);
	produce(&c); /* queued before connecting: high water at once */
	CHECK_EQ(run(&c), 0);
	CHECK_EQ(c.done, 1);
	CHECK_EQ(c.code, RPC_OK);
	CHECK_EQ(c.messages, 64);
	CHECK_EQ(c.last_value, 64);
	CHECK(c.high >= 1);
	CHECK(c.writable >= 1);
	CHECK_EQ(stream_stats.cancelled, 0);
	server_done(srv);
}

/* Messages that fit the raised window (1 MiB) both ways at once: the
 * client's send queue fills the connection's output while the server's
 * echoes fill its own. Both ends used to stop reading while their output
 * waited for the socket, each then waiting for the other to read. */
TEST(echo_within_the_raised_window_with_back_pressure)
{
	struct rpc_server *srv = NULL;
	struct client c = { .to_send = 32, .size = 1000 * 1024 };

	CHECK_EQ(server_start(&srv), 0);
	CHECK_EQ(start(&c, "Echo", 0), 0);
	produce(&c);
	CHECK_EQ(run(&c), 0);
	CHECK_EQ(c.done, 1);
	CHECK_EQ(c.code, RPC_OK);
	CHECK_EQ(c.messages, 32);
	CHECK_EQ(c.last_value, 32);
	CHECK_EQ(c.bytes, 32 * (1000 * 1024 + 6));
	CHECK_EQ(stream_stats.cancelled, 0);
	server_done(srv);
}

TEST(add_and_countdown)
{
	struct rpc_server *srv = NULL;
	struct client a = { .to_send = 100, .size = 10 }, d = { 0 };
	Streamtest__Count req = STREAMTEST__COUNT__INIT;

	CHECK_EQ(server_start(&srv), 0);
	CHECK_EQ(start(&a, "Add", 5 * USEC_PER_SEC), 0);
	produce(&a);
	CHECK_EQ(run(&a), 0);
	CHECK_EQ(a.code, RPC_OK);
	CHECK_EQ(a.messages, 1);
	CHECK_EQ(start(&d, "Countdown", 5 * USEC_PER_SEC), 0);
	req.from = 1000;
	req.size = 4096;
	CHECK_EQ(rpc_stream_call_send(d.sc, &req.base), 0);
	CHECK_EQ(rpc_stream_call_close_send(d.sc), 0);
	CHECK_EQ(run(&d), 0);
	CHECK_EQ(d.code, RPC_OK);
	CHECK_EQ(d.messages, 1000);
	CHECK_EQ(d.last_value, 1);
	server_done(srv);
}

TEST(deadline_and_cancel_mid_stream)
{
	struct rpc_server *srv = NULL;
	struct client e = { .to_send = 1, .size = 10 }, k = { .to_send = 1, .size = 10, .cancel_after_first = true };

	CHECK_EQ(server_start(&srv), 0);
	/* One message, never the half-close: the deadline ends it. */
	e.to_send = 2;
	CHECK_EQ(start(&e, "Echo", USEC_PER_SEC), 0);
	Streamtest__Chunk ch = STREAMTEST__CHUNK__INIT;
	CHECK_EQ(rpc_stream_call_send(e.sc, &ch.base), 0);
	uint64_t t0 = now_usec();
	CHECK_EQ(run(&e), 0);
	CHECK_EQ(e.code, RPC_DEADLINE_EXCEEDED);
	CHECK_EQ(e.messages, 1);
	CHECK(now_usec() - t0 >= 900 * USEC_PER_MSEC);
	/* Cancelled by the client after the first echo. */
	CHECK_EQ(start(&k, "Echo", 0), 0);
	CHECK_EQ(rpc_stream_call_send(k.sc, &ch.base), 0);
	CHECK_EQ(run(&k), 0);
	CHECK_EQ(k.code, RPC_CANCELLED);
	CHECK_EQ(k.done, 1);
	/* The server's handlers heard of both (or do when it stops). */
	server_done(srv);
	CHECK_EQ(stream_stats.cancelled, 2);
}

TEST(nobody_listening_fails_without_calling_back)
{
	struct rpc_server *srv = NULL;
	struct client c = { 0 };

	CHECK_EQ(server_start(&srv), 0);
	rpc_server_free(srv);
	CHECK_EQ(start(&c, "Echo", 5 * USEC_PER_SEC), -ENOENT);
	CHECK_EQ(c.done, 0);
	server_done(NULL);
}
