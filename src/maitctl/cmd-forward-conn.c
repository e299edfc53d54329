/* One local connection of maitctl forward and its Tunnel stream: the
 * relay of tunnel-service/tunnel.c on the host's side, with the same
 * back-pressure both ways (docs/tunnel.md, "maitctl forward"):
 *
 *   local socket readable → data message; above the call's send mark,
 *   the socket is not read until on_writable;
 *   data message → local socket; what it does not take is kept and the
 *   stream's window is not given back (rpc_client_call_pause_receiving)
 *   until it is written.
 *
 * eof either way is a half-close (shutdown(SHUT_WR) locally, an eof
 * message to the guest). A stream that ends with an error resets the
 * local connection (SO_LINGER 0) so that its client sees a failure, not
 * a clean end, and the error is printed on stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/list.h"
#include "base/macro.h"
#include "forward.h"
#include "pb/bytes-field.h"
#include "rpc/status.h"
#include "tunnel.pb-c.h"

struct fwd_conn {
	struct fwd_spec *sp;
	struct fwd_conn *prev, *next; /* f->conns */
	int fd;
	struct loop_io *io;
	struct rpc_client_call *call; /* NULL once done */
	/* Guest data the local socket had no room for. */
	uint8_t *pending;
	size_t pending_len, pending_off;
	bool local_eof;	   /* the local side's EOF was read, eof sent */
	bool guest_eof;	   /* the guest's eof came (shut down once flushed) */
	bool send_blocked; /* the call's send queue is above its mark */
	bool done;	   /* the call ended OK: close once flushed */
};

static void conn_free(struct fwd_conn *c)
{
	struct fwd *f = c->sp->f;

	if (c->call) {
		struct rpc_client_call *call = TAKE_PTR(c->call);
		rpc_client_call_cancel(call); /* its on_done sees call NULL */
	}
	loop_io_free(c->io);
	safe_close(c->fd);
	free(c->pending);
	LIST_REMOVE(f->conns, c);
	f->n_conns--;
	free(c);
}

/* Ends the local connection with a reset: its client sees an error. */
static void conn_abort(struct fwd_conn *c)
{
	(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 }, sizeof(struct linger));
	conn_free(c);
}

static void report(struct fwd_conn *c, int code, const char *what)
{
	fprintf(stderr, "maitctl forward: %s -> %s: %s: %s\n", c->sp->local, c->sp->guest, rpc_code_name(code), what);
}

static void on_io(struct loop_io *io, int fd, uint32_t events, void *userdata);

/* What the local socket is watched for; not at all when nothing (epoll
 * reports a hang-up even then, over and over). False once freed. */
static bool update_events(struct fwd_conn *c)
{
	uint32_t ev = (c->send_blocked || c->local_eof || !c->call ? 0 : EPOLLIN) | (c->pending ? EPOLLOUT : 0);
	int r;

	if (!ev) {
		loop_io_free(c->io);
		c->io = NULL;
		if (c->done && !c->pending) {
			conn_free(c);
			return false;
		}
		return true;
	}
	r = c->io ? loop_io_set_events(c->io, ev) : loop_add_io(c->sp->f->loop, c->fd, ev, on_io, c, &c->io);
	if (r < 0) {
		report(c, RPC_INTERNAL, strerror(-r));
		conn_abort(c);
		return false;
	}
	return true;
}

static bool send_msg(struct fwd_conn *c, const Valet__V1__TunnelRequest *m)
{
	int r = rpc_client_call_send(c->call, &m->base);

	if (r < 0) {
		report(c, RPC_INTERNAL, strerror(-r));
		conn_abort(c);
		return false;
	}
	if (r > 0)
		c->send_blocked = true;
	return true;
}

/* Local → guest. False once freed. */
static bool read_local(struct fwd_conn *c)
{
	struct fwd *f = c->sp->f;
	Valet__V1__TunnelRequest m = VALET__V1__TUNNEL_REQUEST__INIT;
	ssize_t n;

	do
		n = recv(c->fd, f->rbuf, sizeof(f->rbuf), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return true;
	if (n < 0) {
		/* The local client reset: so is the stream. */
		conn_free(c);
		return false;
	}
	if (n == 0) {
		c->local_eof = true;
		m.part_case = VALET__V1__TUNNEL_REQUEST__PART_EOF;
		m.eof = true;
		if (!send_msg(c, &m))
			return false;
		(void)rpc_client_call_close_send(c->call);
		return update_events(c);
	}
	m.part_case = VALET__V1__TUNNEL_REQUEST__PART_DATA;
	m.data.data = f->rbuf;
	m.data.len = (size_t)n;
	return send_msg(c, &m) && update_events(c);
}

/* Writes what the local socket takes; keeps the rest. False once freed. */
static bool write_local(struct fwd_conn *c, const uint8_t *data, size_t len)
{
	size_t off = 0;
	uint8_t *p;

	if (!c->pending) {
		ssize_t n = buf_send_some(c->fd, data, len);
		if (n < 0) {
			conn_free(c); /* the local client went away */
			return false;
		}
		off = (size_t)n;
	}
	if (off == len)
		return true;
	/* Appended: after the pause, up to the stream's window still comes. */
	p = realloc(c->pending, c->pending_len + len - off);
	if (!p) {
		report(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
		conn_abort(c);
		return false;
	}
	memcpy(p + c->pending_len, data + off, len - off);
	c->pending = p;
	c->pending_len += len - off;
	if (c->call)
		rpc_client_call_pause_receiving(c->call);
	return update_events(c);
}

/* False once freed. */
static bool flush_local(struct fwd_conn *c)
{
	ssize_t n = buf_send_some(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off);

	if (n < 0) {
		conn_free(c);
		return false;
	}
	c->pending_off += (size_t)n;
	if (c->pending_off < c->pending_len)
		return true;
	free(c->pending);
	c->pending = NULL;
	c->pending_len = c->pending_off = 0;
	if (c->guest_eof)
		(void)shutdown(c->fd, SHUT_WR);
	if (c->call)
		rpc_client_call_resume_receiving(c->call);
	return update_events(c);
}

static void on_io(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	struct fwd_conn *c = userdata;

	if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c->pending && !flush_local(c))
		return;
	if (c->call && !c->local_eof && !c->send_blocked && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		(void)read_local(c);
}

static void on_message(struct rpc_client_call *call, const uint8_t *data, size_t len, void *userdata)
{
	struct fwd_conn *c = userdata;
	Valet__V1__TunnelResponse *m;
	const uint8_t *p;
	size_t n;

	/* Data, the bulk, without a copy; connected and eof decoded. */
	if (pb_bytes_field(data, len, 2, &p, &n)) {
		(void)write_local(c, p, n);
		return;
	}
	m = valet__v1__tunnel_response__unpack(NULL, len, data);
	if (!m) {
		report(c, RPC_INTERNAL, "an undecodable response");
		return conn_abort(c);
	}
	switch (m->part_case) {
	case VALET__V1__TUNNEL_RESPONSE__PART_DATA: (void)write_local(c, m->data.data, m->data.len); break;
	case VALET__V1__TUNNEL_RESPONSE__PART_EOF:
		c->guest_eof = true;
		if (!c->pending)
			(void)shutdown(c->fd, SHUT_WR);
		break;
	default: break; /* connected */
	}
	valet__v1__tunnel_response__free_unpacked(m, NULL);
}

static void on_writable(struct rpc_client_call *call, void *userdata)
{
	struct fwd_conn *c = userdata;

	c->send_blocked = false;
	(void)update_events(c);
}

static void on_done(struct rpc_client_call *call, int code, const char *message, void *userdata)
{
	struct fwd_conn *c = userdata;

	if (!c->call)
		return; /* conn_free() cancelled it */
	c->call = NULL;
	if (code != RPC_OK) {
		report(c, code, message);
		return conn_abort(c);
	}
	/* Both directions ended: what is left goes out, then the close. */
	c->done = true;
	(void)update_events(c);
}

static const struct rpc_client_stream_ops ops = { on_message, on_writable, on_done };

void fwd_conn_start(struct fwd_spec *sp, int fd)
{
	struct fwd *f = sp->f;
	Valet__V1__TunnelRequest m = VALET__V1__TUNNEL_REQUEST__INIT;
	Valet__V1__TunnelTarget t = VALET__V1__TUNNEL_TARGET__INIT;
	struct fwd_conn *c = calloc(1, sizeof(*c));
	int r;

	if (!c) {
		fprintf(stderr, "maitctl forward: %s -> %s: out of memory\n", sp->local, sp->guest);
		close(fd);
		return;
	}
	*c = (struct fwd_conn){ .sp = sp, .fd = fd };
	LIST_PREPEND(f->conns, c);
	f->n_conns++;
	r = rpc_client_session_start(rpc_channel_session(f->ch), "/valet.v1.Tunnel/Connect", 0, &ops, c, &c->call);
	if (r < 0) {
		c->call = NULL;
		report(c, RPC_INTERNAL, strerror(-r));
		return conn_abort(c);
	}
	t.host = sp->guest_host;
	t.port = sp->guest_port;
	t.unix_path = sp->guest_path;
	m.part_case = VALET__V1__TUNNEL_REQUEST__PART_TARGET;
	m.target = &t;
	/* The local side is read at once: its first bytes go with the
	 * target (maitred takes them once connected). */
	if (send_msg(c, &m))
		(void)update_events(c);
}

void fwd_conn_close_all(struct fwd *f)
{
	while (f->conns)
		conn_free(f->conns);
}
