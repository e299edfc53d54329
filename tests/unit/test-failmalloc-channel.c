/* Allocation-failure sweep over rpc/channel.c with a real server in the
 * same loop (the streamtest service on a unix socket): for every N, the
 * N-th allocation fails, on either side. Every call made on the channel
 * must be answered exactly once (a status, or UNAVAILABLE when the
 * connection could not be kept), the loop must not hang, nothing may leak
 * (ASan), and the next channel must work. */
#include "base/time-util.h"
#include "failmalloc.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "stream-service.h"
#include "streamtest.pb-c.h"
#include "test.h"

#define GUARD_USEC (5 * USEC_PER_SEC)

static struct loop *L;
static struct rpc_server *srv;
static char dir[64], spec[128];
static int pending, answers[4], codes[4], closed;
static bool hung;

static void on_guard(struct loop_timer *t, void *ud)
{
	hung = true;
	loop_exit(L, 0);
}

static void answer(void *ud, int code)
{
	answers[(intptr_t)ud]++;
	codes[(intptr_t)ud] = code;
	if (--pending == 0)
		loop_exit(L, 0);
}

static void on_message(struct rpc_client_call *c, const uint8_t *data, size_t len, void *ud)
{
}

static void on_done(struct rpc_client_call *c, int code, const char *message, void *ud)
{
	answer(ud, code);
}

static const struct rpc_client_stream_ops ops = { .on_message = on_message, .on_done = on_done };

static void on_reply(int code, const char *message, const uint8_t *data, size_t len, void *ud)
{
	answer(ud, code);
}

static void on_closed(int code, const char *message, void *ud)
{
	closed++;
	loop_exit(L, 0);
}

static int setup(void)
{
	struct rpc_server_config cfg;
	struct addr a;
	int r;

	stream_service_reset();
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

static void teardown(void)
{
	char path[96];
	rpc_server_free(srv);
	srv = NULL;
	loop_free(L);
	L = NULL;
	snprintf(path, sizeof(path), "%s/s", dir);
	(void)unlink(path);
}

/* Two Echo streams with a message each, a Countdown, a unary call; the
 * number of calls made is returned (a failed start makes none). */
static int calls(struct rpc_channel *ch)
{
	struct rpc_client_session *s = rpc_channel_session(ch);
	Streamtest__Chunk c = STREAMTEST__CHUNK__INIT;
	Streamtest__Count req = STREAMTEST__COUNT__INIT;
	struct rpc_client_call *call;
	int made = 0;

	for (intptr_t i = 0; i < 3; i++) {
		if (rpc_client_session_start(s, i < 2 ? "/streamtest.Stream/Echo" : "/streamtest.Stream/Countdown",
					     2 * USEC_PER_SEC, &ops, (void *)i, &call) < 0)
			continue;
		made++;
		pending++;
		req.from = 3;
		req.size = 10;
		(void)rpc_client_call_send(call, i < 2 ? &c.base : &req.base);
		(void)rpc_client_call_close_send(call);
	}
	req.from = 1;
	if (rpc_client_session_call(s, "/streamtest.Stream/Countdown", &req.base, 2 * USEC_PER_SEC, on_reply,
				    (void *)(intptr_t)3) == 0) {
		made++;
		pending++;
	}
	return made;
}

static void scenario(unsigned long n, unsigned long *ret_count)
{
	struct loop_timer *guard = NULL;
	struct rpc_channel *ch = NULL;
	struct addr a;
	int r, made = 0;

	CHECK_EQ(setup(), 0);
	CHECK_EQ(addr_parse(spec, &a), 0);
	CHECK_EQ(loop_add_timer(L, now_usec() + GUARD_USEC, on_guard, NULL, &guard), 0);
	pending = closed = 0;
	hung = false;
	memset(answers, 0, sizeof(answers));

	failmalloc_arm(n);
	r = rpc_channel_open(L, &a, USEC_PER_SEC, on_closed, NULL, &ch);
	if (r == 0) {
		made = calls(ch);
		while (pending > 0 && !hung && !closed)
			(void)loop_run(L);
	}
	*ret_count = failmalloc_disarm();
	if (r < 0)
		CHECK_EQ(r, -ENOMEM);
	CHECK(!hung);
	CHECK_EQ(pending, 0);
	int total = 0;
	for (int i = 0; i < 4; i++) {
		CHECK(answers[i] <= 1);
		total += answers[i];
	}
	CHECK_EQ(total, made);
	if (!failmalloc_injected()) {
		CHECK_EQ(made, 4);
		for (int i = 0; i < 4; i++)
			CHECK_EQ(codes[i], RPC_OK);
	}
	if (!closed)
		rpc_channel_free(ch);
	loop_timer_free(guard);
	teardown();

	/* The next channel works. */
	CHECK_EQ(setup(), 0);
	CHECK_EQ(loop_add_timer(L, now_usec() + GUARD_USEC, on_guard, NULL, &guard), 0);
	pending = closed = 0;
	memset(answers, 0, sizeof(answers));
	CHECK_EQ(rpc_channel_open(L, &a, USEC_PER_SEC, on_closed, NULL, &ch), 0);
	CHECK_EQ(calls(ch), 4);
	while (pending > 0 && !hung)
		(void)loop_run(L);
	CHECK(!hung);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(codes[i], RPC_OK);
	rpc_channel_free(ch);
	loop_timer_free(guard);
	teardown();
}

TEST(sweep_channel)
{
	snprintf(dir, sizeof(dir), "/tmp/valet-test-fmchannel-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(spec, sizeof(spec), "unix:%s/s", dir);
	unsigned long total = failmalloc_sweep(NULL, scenario, 0);
	(void)rmdir(dir);
	/* The channel, its session and connection, the calls, their queues and
	 * messages, and the server's side of all of it. */
	CHECK(total > 60);
}
