#include "conn.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/time-util.h"
#include "net/sock.h"
#include "rpc/client-session.h"
#include "rpc/server-session.h"
#include "base/buf.h"

#define CONN_READ_CHUNK (64 * 1024)
/* Stop pulling from the session while this much is unsent. */
#define CONN_OUT_HIGH (256 * 1024)

struct rpc_conn {
	struct loop *loop;
	int fd;
	struct loop_io *io;
	struct loop_timer *timer;
	/* Runs at the end of the loop round (loop.h, step 5): output queued
	 * from outside the connection's own I/O (a process exit) goes out
	 * without another epoll_wait. */
	struct loop_defer *kick;
	bool closing;
	uint64_t last_active; /* last bytes from the peer */
	const struct rpc_session_ops *ops;
	void *session;
	struct buf out;
	rpc_conn_close_fn on_close;
	void *userdata;
};

/* The operations tables call the sessions through wrappers of the exact
 * pointer type: calling a function through a pointer cast to another
 * type is undefined (and trapped by control-flow-integrity builds). */
#define DEFINE_SESSION_OPS(kind, read)                                                                   \
	static ssize_t kind##_pull(void *s, const uint8_t **ret)                                         \
	{                                                                                                \
		return rpc_##kind##_session_pull(s, ret);                                                \
	}                                                                                                \
	static bool kind##_alive(void *s)                                                                \
	{                                                                                                \
		return rpc_##kind##_session_alive(s);                                                    \
	}                                                                                                \
	static uint64_t kind##_next_deadline(void *s)                                                    \
	{                                                                                                \
		return rpc_##kind##_session_next_deadline(s);                                            \
	}                                                                                                \
	static void kind##_expire(void *s, uint64_t now)                                                 \
	{                                                                                                \
		rpc_##kind##_session_expire(s, now);                                                     \
	}                                                                                                \
	const struct rpc_session_ops rpc_##kind##_session_ops = { .feed = kind##_feed,                   \
								  .pull = kind##_pull,                   \
								  .alive = kind##_alive,                 \
								  .next_deadline = kind##_next_deadline, \
								  .expire = kind##_expire,               \
								  .read_while_blocked = read }

/* The server session takes the clock as data (sans-I/O); the client's
 * deadlines are set when a call is made, from its caller. */
static int server_feed(void *s, const uint8_t *data, size_t len, uint64_t now)
{
	return rpc_server_session_feed(s, data, len, now);
}
static int client_feed(void *s, const uint8_t *data, size_t len, uint64_t now)
{
	return rpc_client_session_feed(s, data, len);
}

DEFINE_SESSION_OPS(server, false);
DEFINE_SESSION_OPS(client, true);

static void conn_settle(struct rpc_conn *c);

static void conn_on_kick(struct loop_defer *d, void *userdata)
{
	conn_settle(userdata);
}

static void conn_close(struct rpc_conn *c, int reason)
{
	rpc_conn_close_fn fn = c->on_close;
	void *ud = c->userdata;

	rpc_conn_free(c);
	if (fn)
		fn(reason, ud);
}

/* Pulls session output and writes it; returns <0 when the socket failed. */
static int conn_flush(struct rpc_conn *c)
{
	for (;;) {
		while (c->out.len < CONN_OUT_HIGH) {
			const uint8_t *data;
			ssize_t n = c->ops->pull(c->session, &data);
			if (n < 0)
				return (int)n;
			if (n == 0)
				break;
			if (buf_append(&c->out, data, (size_t)n, SIZE_MAX) < 0)
				return -ENOMEM;
		}
		if (c->out.len == 0)
			return 0;
		int r = buf_send(c->fd, &c->out);
		if (r < 0)
			return r;
		if (c->out.len > 0)
			return 0; /* the socket is full; wait for EPOLLOUT */
	}
}

/* After any activity: write, re-arm interest and timer, or close. */
static void conn_settle(struct rpc_conn *c)
{
	int r = conn_flush(c);
	if (r < 0) {
		conn_close(c, r);
		return;
	}
	if (c->closing && c->out.len == 0) {
		conn_close(c, -EPROTO);
		return;
	}
	if (!c->ops->alive(c->session) && c->out.len == 0) {
		conn_close(c, 0);
		return;
	}
	uint32_t ev = c->out.len ? EPOLLOUT : 0;
	if (!c->closing && (c->out.len < CONN_OUT_HIGH || c->ops->read_while_blocked))
		ev |= EPOLLIN;
	r = loop_io_set_events(c->io, ev);
	if (r < 0) {
		conn_close(c, r); /* else it would stall, unseen */
		return;
	}
	/* Allocated with the connection: a deadline is never lost. */
	loop_timer_set(c->timer, c->ops->next_deadline(c->session));
}

static void conn_on_timer(struct loop_timer *t, void *userdata)
{
	struct rpc_conn *c = userdata;
	c->ops->expire(c->session, now_usec());
	conn_settle(c);
}

static void conn_on_io(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	struct rpc_conn *c = userdata;
	uint8_t buf[CONN_READ_CHUNK];

	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->closing) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_close(c, n == 0 ? 0 : -errno);
			return;
		}
		if (n > 0)
			c->last_active = now_usec();
		if (n > 0 && c->ops->feed(c->session, buf, (size_t)n, c->last_active) < 0)
			/* Send what the session queued (GOAWAY), then go. */
			c->closing = true;
	}
	conn_settle(c);
}

int rpc_conn_new(struct loop *l, int fd, const struct rpc_session_ops *ops, void *session, rpc_conn_close_fn on_close,
		 void *userdata, struct rpc_conn **ret)
{
	_cleanup_close_ int owned = fd;
	_cleanup_(rpc_conn_freep) struct rpc_conn *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	*c = (struct rpc_conn){ .loop = l,
				.fd = -1,
				.ops = ops,
				.session = session,
				.on_close = on_close,
				.userdata = userdata,
				.last_active = now_usec() };
	/* The deadline timer and the kick exist from the start (idle), so that
	 * arming them later cannot fail. */
	r = loop_add_timer(l, USEC_INFINITY, conn_on_timer, c, &c->timer);
	if (r < 0)
		return r;
	r = loop_add_defer(l, conn_on_kick, c, &c->kick);
	if (r < 0)
		return r;
	r = loop_add_io(l, owned, EPOLLIN | EPOLLOUT, conn_on_io, c, &c->io);
	if (r < 0)
		return r;
	c->fd = TAKE_FD(owned);
	*ret = TAKE_PTR(c);
	return 0;
}

void rpc_conn_free(struct rpc_conn *c)
{
	if (!c)
		return;
	loop_io_free(c->io);
	loop_timer_free(c->timer);
	loop_defer_free(c->kick);
	safe_close(c->fd);
	buf_clear(&c->out);
	free(c);
}

void rpc_conn_kick(struct rpc_conn *c)
{
	loop_defer_schedule(c->kick);
}

uint64_t rpc_conn_last_active(const struct rpc_conn *c)
{
	return c->last_active;
}

void rpc_conn_release_buffers(struct rpc_conn *c)
{
	/* A burst may have grown it to CONN_OUT_HIGH and more; kept, it would
	 * stay for the life of a quiet connection. */
	if (c->out.len == 0)
		buf_clear(&c->out);
}

void rpc_conn_flush_and_free(struct rpc_conn *c)
{
	(void)conn_flush(c); /* best effort: the peer is being let go */
	rpc_conn_free(c);
}

int rpc_conn_new_client(struct loop *l, int fd, struct rpc_client_session *session, rpc_conn_close_fn on_close,
			void *userdata, struct rpc_conn **ret)
{
	if (fd < 0)
		return fd;
	/* Takes the fd, even when it fails. */
	return rpc_conn_new(l, fd, &rpc_client_session_ops, session, on_close, userdata, ret);
}

void rpc_conn_closed_message(int reason, char *buf, size_t size)
{
	snprintf(buf, size, "connection closed: %s", reason < 0 ? strerror(-reason) : "by the peer");
}

void rpc_conn_closed_abort(struct rpc_client_session *session, int reason)
{
	char msg[128];

	rpc_conn_closed_message(reason, msg, sizeof(msg));
	rpc_client_session_abort(session, RPC_UNAVAILABLE, msg);
}

bool rpc_conn_connect_failed_message(const struct addr *a, int r, uint64_t deadline, char *buf, size_t size)
{
	char addrbuf[128];

	addr_format(a, addrbuf, sizeof(addrbuf));
	if (r == -ETIMEDOUT && now_usec() >= deadline) {
		snprintf(buf, size, "deadline exceeded while connecting to %s", addrbuf);
		return true;
	}
	snprintf(buf, size, "cannot connect to %s: %s", addrbuf, sock_connect_strerror(a, r));
	return false;
}
