/* rpc/server.c through its public API, on a unix socket in a real loop,
 * with the library's own client (rpc_client_session over rpc_conn) as the
 * peer: the connection cap (evicting the longest idle, refusing when every
 * connection has a call in flight) and the graceful stop. */
#include <sys/socket.h>
#include <sys/stat.h>

#include "base/time-util.h"
#include "guest.pb-c.h"
#include "rpc/client-session.h"
#include "rpc/conn.h"
#include "rpc/server.h"
#include "test.h"

#define GUARD_USEC (10 * USEC_PER_SEC)

static struct loop *L;
static struct rpc_call *held[4];
static int n_held, n_cancelled, events[8], n_replies, last_code;
static int wait_held = -1, wait_replies = -1, wait_events_total = -1;
static bool stopped, hung;

static void check_wake(void)
{
	int total = 0;
	for (size_t i = 0; i < ARRAY_SIZE(events); i++)
		total += events[i];
	if (n_held == wait_held || n_replies == wait_replies || total == wait_events_total)
		loop_exit(L, 0);
}

static void on_cancel(struct rpc_call *call, void *ud)
{
	for (int i = 0; i < n_held; i++)
		if (held[i] == call)
			held[i] = NULL;
	n_cancelled++;
}

/* Holds every call until the test answers it. */
static void h_hold(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	rpc_call_set_cancel(call, on_cancel, NULL);
	held[n_held++] = call;
	check_wake();
}

static const struct rpc_method methods[] = {
	{ "/t.S/Hold", &vm_tools__empty_message__descriptor, h_hold },
};
static const struct rpc_service service = { methods, 1, NULL };

static void on_event(enum rpc_server_event ev, const char *peer, int error, const char *detail, void *ud)
{
	events[ev]++;
	check_wake();
}

static void on_stopped(void *ud)
{
	stopped = true;
	loop_exit(L, 0);
}

static void on_guard(struct loop_timer *t, void *ud)
{
	hung = true;
	loop_exit(L, 0);
}

/* --- a client: rpc_client_session on rpc_conn ------------------------- */

struct client {
	struct rpc_client_session *session;
	struct rpc_conn *conn;
	bool closed;
};

static void client_on_reply(int code, const char *message, const uint8_t *data, size_t len, void *ud)
{
	n_replies++;
	last_code = code;
	check_wake();
}

static void client_on_close(int reason, void *ud)
{
	struct client *cl = ud;
	cl->conn = NULL;
	cl->closed = true;
	loop_exit(L, 0);
}

static struct addr srv_addr;

/* Connects (a unix socket connects at once) and, with call, starts a held
 * call. */
static int client_start(struct client *cl, bool call)
{
	VmTools__EmptyMessage req = VM_TOOLS__EMPTY_MESSAGE__INIT;
	int fd, r;

	*cl = (struct client){ 0 };
	r = sock_connect(&srv_addr, &fd);
	if (r < 0)
		return r;
	r = rpc_client_session_new(&cl->session);
	if (r >= 0 && call)
		r = rpc_client_session_call(cl->session, "/t.S/Hold", &req.base, 0, client_on_reply, cl);
	if (r < 0) {
		safe_close(fd);
		return r;
	}
	return rpc_conn_new(L, fd, &rpc_client_session_ops, cl->session, client_on_close, cl, &cl->conn);
}

static void client_done(struct client *cl)
{
	rpc_conn_free(cl->conn);
	rpc_client_session_free(cl->session);
}

/* --- fixture ------------------------------------------------------------ */

static char dir[64], sock_path[96];

static int server_start(struct rpc_server **ret, unsigned max_connections)
{
	struct rpc_server_config cfg;
	char spec[128];
	int r;

	n_held = n_cancelled = n_replies = 0;
	last_code = -1;
	wait_held = wait_replies = wait_events_total = -1;
	stopped = hung = false;
	memset(events, 0, sizeof(events));
	memset(held, 0, sizeof(held));
	snprintf(dir, sizeof(dir), "/tmp/valet-test-server-XXXXXX");
	if (!mkdtemp(dir))
		return -errno;
	snprintf(sock_path, sizeof(sock_path), "%s/s", dir);
	r = loop_new(&L);
	if (r < 0)
		return r;
	rpc_server_config_init(&cfg, &service);
	cfg.max_connections = max_connections;
	cfg.on_event = on_event;
	r = rpc_server_new(L, &cfg, ret);
	if (r < 0)
		return r;
	snprintf(spec, sizeof(spec), "unix:%s", sock_path);
	r = addr_parse(spec, &srv_addr);
	if (r < 0)
		return r;
	return rpc_server_listen(*ret, &srv_addr);
}

static void server_done(struct rpc_server *srv)
{
	rpc_server_free(srv);
	loop_free(L);
	(void)unlink(sock_path);
	(void)rmdir(dir);
}

static int run_guarded(void)
{
	struct loop_timer *guard;
	int r = loop_add_timer(L, now_usec() + GUARD_USEC, on_guard, NULL, &guard);
	if (r < 0)
		return r;
	r = loop_run(L);
	loop_timer_free(guard);
	return hung ? -ETIMEDOUT : r;
}

/* --- cases -------------------------------------------------------------- */

TEST(at_the_cap_the_longest_idle_connection_is_evicted)
{
	struct rpc_server *srv = NULL;
	struct client busy, idle, third;

	CHECK_EQ(server_start(&srv, 2), 0);
	/* One connection with a call in flight, one idle (its preface sent). */
	CHECK_EQ(client_start(&busy, true), 0);
	CHECK_EQ(client_start(&idle, false), 0);
	wait_held = 1;
	CHECK_EQ(run_guarded(), 0);
	CHECK_EQ(n_held, 1);
	CHECK_EQ(rpc_server_connections(srv), 2);
	/* A third: the idle one goes (GOAWAY, then closed), the busy stays. */
	CHECK_EQ(client_start(&third, true), 0);
	wait_held = 2;
	while (!(n_held == 2 && idle.closed) && !hung)
		CHECK_EQ(run_guarded(), 0);
	CHECK_EQ(events[RPC_SERVER_PEER_EVICTED], 1);
	CHECK_EQ(events[RPC_SERVER_PEER_OVER_LIMIT], 0);
	CHECK(idle.closed);
	CHECK(!busy.closed);
	CHECK_EQ(rpc_server_connections(srv), 2);
	CHECK_EQ(n_cancelled, 0);
	client_done(&busy);
	client_done(&idle);
	client_done(&third);
	server_done(srv);
}

TEST(at_the_cap_with_every_connection_busy_a_new_peer_is_refused)
{
	struct rpc_server *srv = NULL;
	struct client a, b, c;

	CHECK_EQ(server_start(&srv, 2), 0);
	CHECK_EQ(client_start(&a, true), 0);
	CHECK_EQ(client_start(&b, true), 0);
	wait_held = 2;
	CHECK_EQ(run_guarded(), 0);
	CHECK_EQ(n_held, 2);
	/* Refused: closed at once; the call it queued fails on the client. */
	CHECK_EQ(client_start(&c, true), 0);
	while (!c.closed && !hung)
		CHECK_EQ(run_guarded(), 0);
	CHECK_EQ(events[RPC_SERVER_PEER_OVER_LIMIT], 1);
	CHECK_EQ(events[RPC_SERVER_PEER_EVICTED], 0);
	CHECK(!a.closed);
	CHECK(!b.closed);
	CHECK_EQ(rpc_server_connections(srv), 2);
	client_done(&a);
	client_done(&b);
	client_done(&c);
	server_done(srv);
}

TEST(graceful_stop_waits_for_calls_in_flight)
{
	struct rpc_server *srv = NULL;
	struct client cl;
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	struct stat st;

	CHECK_EQ(server_start(&srv, 8), 0);
	CHECK_EQ(client_start(&cl, true), 0);
	wait_held = 1;
	CHECK_EQ(run_guarded(), 0);
	CHECK_EQ(n_held, 1);
	/* Stop: the listener goes at once (and its socket file); the call in
	 * flight keeps the connection. */
	rpc_server_stop(srv, on_stopped, NULL);
	CHECK(!stopped);
	CHECK(stat(sock_path, &st) < 0 && errno == ENOENT);
	int fd;
	CHECK_EQ(sock_connect(&srv_addr, &fd), -ENOENT);
	CHECK_EQ(rpc_server_connections(srv), 1);
	/* Answered: the reply reaches the client, then the server is done. */
	rpc_call_reply(held[0], &resp.base);
	wait_replies = 1;
	while (!(stopped && n_replies == 1) && !hung)
		CHECK_EQ(run_guarded(), 0);
	CHECK(stopped);
	CHECK_EQ(n_replies, 1);
	CHECK_EQ(last_code, RPC_OK);
	CHECK_EQ(n_cancelled, 0);
	CHECK_EQ(rpc_server_connections(srv), 0);
	client_done(&cl);
	server_done(srv);
}

TEST(graceful_stop_with_no_connection_is_immediate)
{
	struct rpc_server *srv = NULL;

	CHECK_EQ(server_start(&srv, 8), 0);
	rpc_server_stop(srv, on_stopped, NULL);
	CHECK(stopped);
	server_done(srv);
}
