/* One Tunnel.Connect call (docs/tunnel.md, "The relay"). A tunnel lives
 * as long as its call: connecting (the connector), then relaying:
 *
 *   socket readable → one data message (rpc_call_send_encoded); when the
 *   send queue is above its mark, the socket is not read until the
 *   writable callback: a host that stops reading stops the guest
 *   service, nothing piles up here;
 *   data message → socket; what the socket does not take is kept (one
 *   message at most) and receiving pauses until it is written: a guest
 *   service that stops reading shuts the stream's window.
 *
 * eof either way is a half-close: the client's becomes shutdown(SHUT_WR)
 * once its data is written, the socket's end an eof message. The call
 * ends OK when both have happened, with the socket's error otherwise. */
#include "tunnel.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/list.h"
#include "base/macro.h"
#include "base/time-util.h"
#include "net/connector.h"
#include "target.h"
#include "tunnel.pb-c.h"

/* Room before the data read for the message's own header: the tag of
 * field 2 and the data's length as a varint (3 bytes for TUNNEL_CHUNK). */
#define HEAD_ROOM 8
/* The call's send marks: with TUNNEL_CHUNK reads, a few messages in
 * flight keep the connection busy while 100 tunnels hold at most
 * 100 × 640 KiB queued for a host that stops reading them all. */
#define SEND_HIGH (4 * TUNNEL_CHUNK)
#define SEND_LOW TUNNEL_CHUNK
/* Socket reads per wake-up before the loop serves others. */
#define READS_PER_WAKE 4

struct tunnel {
	struct tunnel_service *svc;
	struct tunnel *prev, *next; /* svc->tunnels */
	struct rpc_call *call;
	struct connector *connector; /* while connecting */
	struct addr target;
	int fd;
	struct loop_io *io;
	/* Client data the socket had no room for (receiving is paused). */
	uint8_t *pending;
	size_t pending_len, pending_off;
	bool to_guest_ended;   /* the client's eof (or half-close) came */
	bool shut_down;	       /* ... and shutdown(SHUT_WR) is done */
	bool from_guest_ended; /* the socket's EOF was read, eof queued */
	bool send_blocked;     /* the call's send queue is above its mark */
};

static void tunnel_free(struct tunnel *t)
{
	struct tunnel_service *s = t->svc;

	connector_free(t->connector);
	loop_io_free(t->io);
	safe_close(t->fd);
	free(t->pending);
	LIST_REMOVE(s->tunnels, t);
	if (--s->n_tunnels == 0) {
		free(s->rbuf);
		s->rbuf = NULL;
	}
	free(t);
}

static void tunnel_end(struct tunnel *t, int code, const char *fmt, ...) _printf_(3, 4);
static void tunnel_end(struct tunnel *t, int code, const char *fmt, ...)
{
	struct rpc_call *call = t->call;
	char msg[512]; /* what grpc-message carries at most */
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	rpc_call_set_cancel(call, NULL, NULL);
	tunnel_free(t);
	rpc_call_finish(call, code, fmt ? "%s" : NULL, msg);
}

/* shared/spec's table, with the errors of a connection: the far end
 * refused, reset or vanished is UNAVAILABLE. */
static int code_of_errno(int r)
{
	switch (-r) {
	case ENOENT: return RPC_NOT_FOUND;
	case EACCES:
	case EPERM: return RPC_PERMISSION_DENIED;
	case EMFILE:
	case ENFILE:
	case ENOMEM:
	case ENOBUFS: return RPC_RESOURCE_EXHAUSTED;
	case ECONNREFUSED:
	case ECONNRESET:
	case ECONNABORTED:
	case EPIPE:
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ENETDOWN:
	case EHOSTDOWN:
	case ENOTCONN:
	case EADDRNOTAVAIL:
	case EAGAIN: /* a unix listener's backlog is full */
		return RPC_UNAVAILABLE;
	default: return RPC_INTERNAL;
	}
}

/* Ends the call with the socket error r, naming what was being done. */
static void tunnel_fail(struct tunnel *t, int r, const char *doing)
{
	char a[128];

	tunnel_end(t, code_of_errno(r), "%s %s: %s", doing, addr_format(&t->target, a, sizeof(a)), strerror(-r));
}

static void on_io(struct loop_io *io, int fd, uint32_t events, void *userdata);

/* Watches the socket for what the tunnel waits for. Not at all when it
 * waits for nothing: epoll reports a hang-up even when asked for nothing,
 * over and over. False once the call has ended. */
static bool update_events(struct tunnel *t)
{
	uint32_t ev = (t->send_blocked || t->from_guest_ended ? 0 : EPOLLIN) | (t->pending ? EPOLLOUT : 0);
	int r;

	if (!ev) {
		loop_io_free(t->io);
		t->io = NULL;
		return true;
	}
	r = t->io ? loop_io_set_events(t->io, ev) : loop_add_io(t->svc->core->loop, t->fd, ev, on_io, t, &t->io);
	if (r < 0) {
		tunnel_end(t, RPC_RESOURCE_EXHAUSTED, "could not watch the tunnel's socket: %s", strerror(-r));
		return false;
	}
	return true;
}

/* Both directions over: the call ends OK. False once it has. */
static bool maybe_done(struct tunnel *t)
{
	if (!(t->shut_down && t->from_guest_ended))
		return true;
	tunnel_end(t, RPC_OK, NULL);
	return false;
}

static bool shut_down(struct tunnel *t)
{
	/* A socket whose peer is gone already says so on the next read. */
	(void)shutdown(t->fd, SHUT_WR);
	t->shut_down = true;
	return maybe_done(t);
}

/* connected or eof: the responses that are one flag. */
static bool send_flag(struct tunnel *t, Valet__V1__TunnelResponse__PartCase part)
{
	Valet__V1__TunnelResponse m = VALET__V1__TUNNEL_RESPONSE__INIT;
	int r;

	m.part_case = part;
	if (part == VALET__V1__TUNNEL_RESPONSE__PART_CONNECTED)
		m.connected = true;
	else
		m.eof = true;
	r = rpc_call_send(t->call, &m.base);
	if (r < 0) {
		tunnel_end(t, RPC_RESOURCE_EXHAUSTED, "could not queue a response: %s", strerror(-r));
		return false;
	}
	if (r > 0)
		t->send_blocked = true;
	return true;
}

/* A data message made in place: its header goes in the room before the
 * n bytes read at rbuf + HEAD_ROOM. Returns where the message starts. */
static uint8_t *encode_data(uint8_t *rbuf, size_t n, size_t *ret_len)
{
	uint8_t head[HEAD_ROOM];
	size_t h = 0;

	head[h++] = (2 << 3) | 2; /* field 2 (data), length-delimited */
	do {
		head[h++] = (uint8_t)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
		n >>= 7;
	} while (n);
	memcpy(rbuf + HEAD_ROOM - h, head, h);
	*ret_len = h;
	return rbuf + HEAD_ROOM - h;
}

/* Socket → call. False once the call has ended. */
static bool read_guest(struct tunnel *t)
{
	for (unsigned i = 0; i < READS_PER_WAKE && !t->send_blocked && !t->from_guest_ended; i++) {
		ssize_t n = recv(t->fd, t->svc->rbuf + HEAD_ROOM, TUNNEL_CHUNK, MSG_DONTWAIT);
		size_t head;
		uint8_t *msg;
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			tunnel_fail(t, -errno, "reading from");
			return false;
		}
		if (n == 0) {
			t->from_guest_ended = true;
			if (!send_flag(t, VALET__V1__TUNNEL_RESPONSE__PART_EOF))
				return false;
			if (!maybe_done(t))
				return false;
			break;
		}
		msg = encode_data(t->svc->rbuf, (size_t)n, &head);
		r = rpc_call_send_encoded(t->call, msg, head + (size_t)n);
		if (r < 0) {
			tunnel_end(t, RPC_RESOURCE_EXHAUSTED, "could not queue a response: %s", strerror(-r));
			return false;
		}
		if (r > 0)
			t->send_blocked = true;
	}
	return update_events(t);
}

/* Writes what the socket takes of data: 0 all of it, the rest kept in
 * pending (receiving paused) otherwise; false once the call has ended. */
static bool write_guest(struct tunnel *t, const uint8_t *data, size_t len)
{
	ssize_t sent = buf_send_some(t->fd, data, len);
	size_t off;
	uint8_t *p;

	if (sent < 0) {
		tunnel_fail(t, (int)sent, "writing to");
		return false;
	}
	off = (size_t)sent;
	if (off == len)
		return true;
	p = realloc(t->pending, t->pending_len - t->pending_off + len - off);
	if (!p) {
		tunnel_end(t, RPC_RESOURCE_EXHAUSTED, "out of memory");
		return false;
	}
	/* Appended: receiving pauses below, so pending holds one message's
	 * rest, but a delivery already under way must not be lost either. */
	memmove(p, p + t->pending_off, t->pending_len - t->pending_off);
	memcpy(p + t->pending_len - t->pending_off, data + off, len - off);
	t->pending_len = t->pending_len - t->pending_off + len - off;
	t->pending_off = 0;
	t->pending = p;
	rpc_call_pause_receiving(t->call);
	return update_events(t);
}

/* False once the call has ended. */
static bool flush_pending(struct tunnel *t)
{
	ssize_t n = buf_send_some(t->fd, t->pending + t->pending_off, t->pending_len - t->pending_off);

	if (n < 0) {
		tunnel_fail(t, (int)n, "writing to");
		return false;
	}
	t->pending_off += (size_t)n;
	if (t->pending_off < t->pending_len)
		return true;
	free(t->pending);
	t->pending = NULL;
	t->pending_len = t->pending_off = 0;
	if (t->to_guest_ended)
		return shut_down(t) && update_events(t);
	rpc_call_resume_receiving(t->call);
	return update_events(t);
}

static void on_io(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	struct tunnel *t = userdata;

	if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && t->pending && !flush_pending(t))
		return;
	if (!t->send_blocked && !t->from_guest_ended && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		(void)read_guest(t);
}

/* Data for the guest, taken in place when the message is data alone. */
static void on_data(struct rpc_call *call, const uint8_t *data, size_t len, void *userdata)
{
	struct tunnel *t = userdata;

	if (t->to_guest_ended)
		return tunnel_end(t, RPC_INVALID_ARGUMENT, "Connect: data after eof");
	if (len)
		(void)write_guest(t, data, len);
}

static void on_message(struct rpc_call *call, const ProtobufCMessage *msg, void *userdata)
{
	const Valet__V1__TunnelRequest *m = (const Valet__V1__TunnelRequest *)msg;
	struct tunnel *t = userdata;

	switch (m->part_case) {
	case VALET__V1__TUNNEL_REQUEST__PART_DATA:
		return on_data(call, m->data.data, m->data.len, userdata);
	case VALET__V1__TUNNEL_REQUEST__PART_EOF:
		if (t->to_guest_ended)
			return tunnel_end(t, RPC_INVALID_ARGUMENT, "Connect: a second eof");
		t->to_guest_ended = true;
		if (!t->pending)
			(void)shut_down(t);
		return;
	case VALET__V1__TUNNEL_REQUEST__PART_TARGET:
		return tunnel_end(t, RPC_INVALID_ARGUMENT, "Connect: only the first message names the target");
	default: return tunnel_end(t, RPC_INVALID_ARGUMENT, "Connect: a message with neither data nor eof");
	}
}

/* The client's half-close is its eof, if it sent none. */
static void on_end(struct rpc_call *call, void *userdata)
{
	struct tunnel *t = userdata;

	if (t->to_guest_ended)
		return;
	t->to_guest_ended = true;
	if (!t->pending)
		(void)shut_down(t);
}

static void on_writable(struct rpc_call *call, void *userdata)
{
	struct tunnel *t = userdata;

	t->send_blocked = false;
	(void)update_events(t);
}

static void on_cancel(struct rpc_call *call, void *userdata)
{
	tunnel_free(userdata);
}

static void on_connected(int fd, void *userdata)
{
	struct tunnel *t = userdata;

	t->connector = NULL;
	if (fd == -ETIMEDOUT) {
		char a[128];
		return tunnel_end(t, RPC_UNAVAILABLE, "connect to %s: no answer within %llu s",
				  addr_format(&t->target, a, sizeof(a)), TUNNEL_CONNECT_TIMEOUT_USEC / 1000000);
	}
	if (fd < 0)
		return tunnel_fail(t, fd, "connect to");
	t->fd = fd;
	rpc_call_set_writable(t->call, on_writable, t);
	rpc_call_set_send_marks(t->call, SEND_HIGH, SEND_LOW);
	if (!send_flag(t, VALET__V1__TUNNEL_RESPONSE__PART_CONNECTED))
		return;
	rpc_call_set_receiver(t->call, on_message, on_end, t);
	rpc_call_set_data_receiver(t->call, 2 /* TunnelRequest.data */, on_data);
	(void)update_events(t);
}

void tunnel_start(struct tunnel_service *s, struct rpc_call *call, const ProtobufCMessage *request)
{
	const Valet__V1__TunnelRequest *m = (const Valet__V1__TunnelRequest *)request;
	const Valet__V1__TunnelTarget *tg = m->target;
	char err[256];
	struct addr a;
	struct tunnel *t;
	int r;

	if (m->part_case != VALET__V1__TUNNEL_REQUEST__PART_TARGET || !tg)
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "Connect: the first message must be the target");
	if (tunnel_target_parse(tg->host, tg->port, tg->unix_path, &a, err, sizeof(err)) < 0)
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "Connect: %s", err);
	if (!s->rbuf) {
		s->rbuf = malloc(HEAD_ROOM + TUNNEL_CHUNK);
		if (!s->rbuf)
			return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		if (s->n_tunnels == 0) {
			free(s->rbuf);
			s->rbuf = NULL;
		}
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	*t = (struct tunnel){ .svc = s, .call = call, .target = a, .fd = -1 };
	LIST_PREPEND(s->tunnels, t);
	s->n_tunnels++;
	r = connector_start(s->core->loop, &a, now_usec() + TUNNEL_CONNECT_TIMEOUT_USEC, on_connected, t,
			    &t->connector);
	if (r < 0)
		return tunnel_fail(t, r, "connect to");
	rpc_call_set_cancel(call, on_cancel, t);
}

void tunnel_end_all(struct tunnel_service *s, bool graceful)
{
	while (s->tunnels) {
		struct tunnel *t = s->tunnels;
		if (graceful) {
			tunnel_end(t, RPC_UNAVAILABLE, "maitred is stopping");
			continue;
		}
		rpc_call_set_cancel(t->call, NULL, NULL);
		tunnel_free(t);
	}
}
