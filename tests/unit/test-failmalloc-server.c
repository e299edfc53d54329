/* Allocation-failure sweeps over the transport: a connection's deadline
 * timer (rpc_conn) and a silent peer's handshake timeout (rpc_server). For
 * every N, the N-th allocation fails; the deadline must still fire, the
 * silent peer must still be dropped, and nothing may leak. */
#include <sys/socket.h>

#include "base/time-util.h"
#include "failmalloc.h"
#include "rpc/conn.h"
#include "rpc/server.h"
#include "test.h"

#define GUARD_USEC (5 * USEC_PER_SEC)

static struct loop *L;
static bool hung, expired, closed;
static uint64_t deadline;

static void on_guard(struct loop_timer *t, void *ud)
{
	hung = true;
	loop_exit(L, 0);
}

/* A session that asks for a deadline 10 ms after its first bytes. */
static int fake_feed(void *s, const uint8_t *d, size_t n, uint64_t now)
{
	if (deadline == USEC_INFINITY && !expired)
		deadline = now_usec() + 10 * USEC_PER_MSEC;
	return 0;
}
static ssize_t fake_pull(void *s, const uint8_t **ret)
{
	return 0;
}
static bool fake_alive(void *s)
{
	return true;
}
static uint64_t fake_next_deadline(void *s)
{
	return deadline;
}
static void fake_expire(void *s, uint64_t now)
{
	if (now >= deadline) {
		expired = true;
		deadline = USEC_INFINITY;
		loop_exit(L, 0);
	}
}
static const struct rpc_session_ops fake_ops = { fake_feed, fake_pull, fake_alive, fake_next_deadline, fake_expire };

static void on_conn_close(int reason, void *ud)
{
	closed = true;
	loop_exit(L, 0);
}

static void conn_scenario(unsigned long n, unsigned long *ret_count)
{
	struct loop_timer *guard;
	struct rpc_conn *c = NULL;
	int sv[2];

	CHECK_EQ(loop_new(&L), 0);
	CHECK_EQ(loop_add_timer(L, now_usec() + GUARD_USEC, on_guard, NULL, &guard), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	hung = expired = closed = false;
	deadline = USEC_INFINITY;
	CHECK_EQ(write(sv[1], "x", 1), 1);

	failmalloc_arm(n);
	int r = rpc_conn_new(L, sv[0], &fake_ops, NULL, on_conn_close, NULL, &c);
	if (r == 0)
		(void)loop_run(L);
	*ret_count = failmalloc_disarm();
	if (r < 0)
		CHECK_EQ(r, -ENOMEM);
	else {
		/* The deadline fired (or the connection ended, visibly). */
		CHECK(!hung);
		CHECK(expired || closed);
		if (!closed)
			rpc_conn_free(c);
	}
	safe_close(sv[1]);
	loop_timer_free(guard);
	loop_free(L);
}

TEST(sweep_conn_deadline_timer)
{
	unsigned long total = failmalloc_sweep(NULL, conn_scenario, FAILMALLOC_EACH_INJECTED);
	CHECK(total >= 3);
}

/* --- a silent peer --------------------------------------------------- */

static const struct rpc_service no_methods = { NULL, 0, NULL };
static int events[8];

static void on_server_event(enum rpc_server_event ev, const char *peer, int error, const char *detail, void *ud)
{
	events[ev]++;
}

/* The client's end: drained; EOF means the server let the peer go. */
static void on_client(struct loop_io *io, int fd, uint32_t ev, void *ud)
{
	char buf[512];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		closed = true;
		loop_exit(L, 0);
	}
}

static char sock_path[64];

static void server_scenario(unsigned long n, unsigned long *ret_count)
{
	struct rpc_server_config cfg;
	struct rpc_server *srv;
	struct loop_timer *guard;
	struct loop_io *io;
	struct addr a;
	char spec[80];
	int fd;

	CHECK_EQ(loop_new(&L), 0);
	rpc_server_config_init(&cfg, &no_methods);
	cfg.handshake_timeout_usec = 20 * USEC_PER_MSEC;
	cfg.on_event = on_server_event;
	CHECK_EQ(rpc_server_new(L, &cfg, &srv), 0);
	snprintf(spec, sizeof(spec), "unix:%s", sock_path);
	CHECK_EQ(addr_parse(spec, &a), 0);
	CHECK_EQ(rpc_server_listen(srv, &a), 0);
	for (int round = 0; round < 2; round++) {
		/* A silent peer: connects (at once, a unix socket), says nothing. */
		CHECK_EQ(sock_connect(&a, &fd), 0);
		CHECK_EQ(loop_add_io(L, fd, EPOLLIN, on_client, NULL, &io), 0);
		CHECK_EQ(loop_add_timer(L, now_usec() + GUARD_USEC, on_guard, NULL, &guard), 0);
		hung = closed = false;
		memset(events, 0, sizeof(events));
		/* The first round with the failure, the second without. */
		if (round == 0)
			failmalloc_arm(n);
		(void)loop_run(L);
		if (round == 0)
			*ret_count = failmalloc_disarm();
		CHECK(!hung);
		CHECK(closed);
		/* Dropped for its silence, or (no memory) at once: logged either way. */
		CHECK_EQ(events[RPC_SERVER_PEER_SILENT] + events[RPC_SERVER_PEER_FAILED], 1);
		if (round == 1)
			CHECK_EQ(events[RPC_SERVER_PEER_SILENT], 1);
		loop_io_free(io);
		loop_timer_free(guard);
		safe_close(fd);
		CHECK_EQ(rpc_server_connections(srv), 0);
	}
	rpc_server_free(srv);
	loop_free(L);
}

TEST(sweep_server_silent_peer)
{
	char dir[] = "/tmp/valet-failmalloc-XXXXXX";

	CHECK(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/s", dir);
	/* The accepted connection, its session and nghttp2's state: 19
	 * today. */
	unsigned long total = failmalloc_sweep(NULL, server_scenario, FAILMALLOC_EACH_INJECTED);
	CHECK(total > 10);
	(void)unlink(sock_path);
	(void)rmdir(dir);
}
