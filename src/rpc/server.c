#include "server.h"

#include <malloc.h>
#include <stdio.h>
#include <sys/socket.h>

#include "base/list.h"
#include "base/time-util.h"
#include "net/listener.h"
#include "rpc/conn.h"

struct server_conn {
	struct rpc_server *server;
	struct rpc_conn *conn;
	struct rpc_server_session *session;
	struct loop_timer *handshake;
	char peer[80];
	struct server_conn *prev, *next;
};

struct rpc_server {
	struct loop *loop;
	struct rpc_server_config cfg;
	struct net_listener *listener;
	struct server_conn *conns;
	unsigned n_conns;
	bool stopping;
	rpc_server_stopped_fn stopped_fn;
	void *stopped_userdata;
	/* Gives the freed heap back once calls have stopped ending for a
	 * while, whatever stays connected (a host keeps its channel). */
	struct loop_timer *trim;
	bool trim_armed;
	/* When a stream or a connection last ended. */
	uint64_t last_end;
};

/* How long no stream nor connection has ended before the heap is trimmed:
 * the burst's memory is all free by then (the loop frees a closed
 * connection's I/O source only after the round), and a client making
 * calls one after the other (on one channel or one connection per call,
 * like maitctl) costs one trim per pause, not one per call. */
#define TRIM_DELAY_USEC (250 * USEC_PER_MSEC)

/* Something ended: (re)start the quiet period. The timer is armed once
 * per pause and moved on when it fires early, so a call costs a clock
 * read here, not a walk of the loop's timer list. */
static void server_note_end(struct rpc_server *srv)
{
	srv->last_end = now_usec();
	if (!srv->trim_armed && srv->trim) {
		loop_timer_set(srv->trim, srv->last_end + TRIM_DELAY_USEC);
		srv->trim_armed = true;
	}
}

static void on_stream_end(void *userdata)
{
	struct server_conn *sc = userdata;
	server_note_end(sc->server);
}

void rpc_server_config_init(struct rpc_server_config *cfg, const struct rpc_service *svc)
{
	*cfg = (struct rpc_server_config){ .service = svc,
					   .max_connections = 128,
					   .handshake_timeout_usec = 10 * USEC_PER_SEC };
	rpc_limits_init(&cfg->limits);
	peer_policy_init(&cfg->policy);
}

static void server_event_detail(struct rpc_server *srv, enum rpc_server_event ev, const char *peer, int error,
				const char *detail)
{
	if (srv->cfg.on_event)
		srv->cfg.on_event(ev, peer, error, detail, srv->cfg.userdata);
}

static void server_event(struct rpc_server *srv, enum rpc_server_event ev, const char *peer, int error)
{
	server_event_detail(srv, ev, peer, error, NULL);
}

static void server_maybe_stopped(struct rpc_server *srv)
{
	if (srv->stopping && srv->n_conns == 0 && srv->stopped_fn) {
		rpc_server_stopped_fn fn = srv->stopped_fn;
		srv->stopped_fn = NULL;
		fn(srv->stopped_userdata);
	}
}

static void server_conn_free(struct server_conn *sc)
{
	struct rpc_server *srv = sc->server;
	LIST_REMOVE(srv->conns, sc);
	srv->n_conns--;
	loop_timer_free(sc->handshake);
	rpc_server_session_free(sc->session);
	free(sc);
	server_note_end(srv);
}

/* No call has ended for TRIM_DELAY_USEC: the burst is over. Hand the freed
 * heap back to the kernel, or idle RSS stays near the burst's peak (the free
 * chunks are scattered between a few live ones, so glibc does not trim by
 * itself), and drop what the connections still open grew for it. */
static void on_trim(struct loop_timer *t, void *userdata)
{
	struct rpc_server *srv = userdata;
	uint64_t due = srv->last_end + TRIM_DELAY_USEC;

	if (now_usec() < due) {
		loop_timer_set(t, due); /* more ended since it was armed */
		return;
	}
	srv->trim_armed = false;
	for (struct server_conn *sc = srv->conns; sc; sc = sc->next)
		rpc_conn_release_buffers(sc->conn);
	(void)malloc_trim(0);
}

static void on_conn_close(int reason, void *userdata)
{
	struct server_conn *sc = userdata;
	struct rpc_server *srv = sc->server;

	/* nghttp2 lets a peer that broke the protocol go after its GOAWAY,
	 * without an error from feed(): the session knows why. */
	const char *failure = rpc_server_session_failure(sc->session);

	if (reason == -EPROTO || failure)
		server_event_detail(srv, RPC_SERVER_PEER_PROTOCOL_ERROR, sc->peer, -EPROTO, failure);
	else if (reason == -ENOMEM)
		server_event(srv, RPC_SERVER_PEER_FAILED, sc->peer, reason); /* ours, not the peer's doing */
	server_conn_free(sc);
	server_maybe_stopped(srv);
}

static void on_handshake_deadline(struct loop_timer *t, void *userdata)
{
	struct server_conn *sc = userdata;
	struct rpc_server *srv = sc->server;

	loop_timer_free(TAKE_PTR(sc->handshake));
	if (rpc_server_session_greeted(sc->session))
		return;
	server_event(srv, RPC_SERVER_PEER_SILENT, sc->peer, -ETIMEDOUT);
	rpc_conn_free(sc->conn);
	server_conn_free(sc);
	server_maybe_stopped(srv);
}

/* The connection with no call in flight that has been quiet the longest,
 * or NULL when every connection has a call waiting for its answer. */
static struct server_conn *server_longest_idle(struct rpc_server *srv)
{
	struct server_conn *best = NULL;
	uint64_t best_active = 0;

	for (struct server_conn *sc = srv->conns; sc; sc = sc->next) {
		if (rpc_server_session_pending_calls(sc->session) > 0)
			continue;
		uint64_t a = rpc_conn_last_active(sc->conn);
		if (!best || a < best_active) {
			best = sc;
			best_active = a;
		}
	}
	return best;
}

/* Idle channels cost the host nothing to reopen (a GOAWAY tells a gRPC
 * client to), while a full table of them would lock the host out. */
static bool server_make_room(struct rpc_server *srv)
{
	struct server_conn *sc = server_longest_idle(srv);

	if (!sc)
		return false;
	server_event(srv, RPC_SERVER_PEER_EVICTED, sc->peer, 0);
	rpc_server_session_shutdown(sc->session);
	rpc_conn_flush_and_free(sc->conn);
	server_conn_free(sc);
	return true;
}

static void on_session_notify(void *userdata)
{
	struct server_conn *sc = userdata;
	rpc_conn_kick(sc->conn);
}

/* The listener has applied the peer policy. */
static void server_accept_one(int fd, const struct peer *peer, void *userdata)
{
	struct rpc_server *srv = userdata;
	struct server_conn *sc;
	int r;

	if (srv->n_conns >= srv->cfg.max_connections && !server_make_room(srv)) {
		server_event(srv, RPC_SERVER_PEER_OVER_LIMIT, peer->desc, -EMFILE);
		safe_close(fd);
		return;
	}
	sc = calloc(1, sizeof(*sc));
	if (!sc) {
		server_event(srv, RPC_SERVER_PEER_FAILED, peer->desc, -ENOMEM);
		safe_close(fd);
		return;
	}
	sc->server = srv;
	snprintf(sc->peer, sizeof(sc->peer), "%s", peer->desc);
	r = rpc_server_session_new(srv->cfg.service, &srv->cfg.limits, NULL, NULL, &sc->session);
	if (r >= 0 && srv->cfg.handshake_timeout_usec)
		r = loop_add_timer(srv->loop, now_usec() + srv->cfg.handshake_timeout_usec, on_handshake_deadline, sc,
				   &sc->handshake);
	if (r < 0) {
		server_event(srv, RPC_SERVER_PEER_FAILED, peer->desc, r);
		loop_timer_free(sc->handshake);
		rpc_server_session_free(sc->session);
		free(sc);
		safe_close(fd);
		return;
	}
	rpc_server_session_set_peer(sc->session, peer->desc);
	rpc_server_session_set_reject(sc->session, srv->cfg.on_reject, srv->cfg.userdata);
	r = rpc_conn_new(srv->loop, fd, &rpc_server_session_ops, sc->session, on_conn_close, sc, &sc->conn);
	if (r < 0) {
		server_event(srv, RPC_SERVER_PEER_FAILED, peer->desc, r);
		loop_timer_free(sc->handshake);
		rpc_server_session_free(sc->session);
		free(sc);
		return;
	}
	/* Replies that come later (a process exit) must wake the writer. */
	rpc_server_session_set_notify(sc->session, on_session_notify, sc);
	rpc_server_session_set_stream_end(sc->session, on_stream_end, sc);
	LIST_PREPEND(srv->conns, sc);
	srv->n_conns++;
}

static void server_refused(const struct peer *peer, void *userdata)
{
	server_event(userdata, RPC_SERVER_PEER_REFUSED, peer->desc, -EPERM);
}

static void server_accept_failed(int error, void *userdata)
{
	server_event(userdata, RPC_SERVER_ACCEPT_FAILED, "?", error);
}

static const struct net_listener_ops server_listener_ops = {
	.accepted = server_accept_one,
	.refused = server_refused,
	.failed = server_accept_failed,
};

int rpc_server_new(struct loop *l, const struct rpc_server_config *cfg, struct rpc_server **ret)
{
	struct rpc_server *srv = calloc(1, sizeof(*srv));
	int r;

	if (!srv)
		return -ENOMEM;
	srv->loop = l;
	srv->cfg = *cfg;
	r = net_listener_new(l, &srv->cfg.policy, 128, &server_listener_ops, srv, &srv->listener);
	if (r >= 0)
		r = loop_add_timer(l, USEC_INFINITY, on_trim, srv, &srv->trim);
	if (r < 0) {
		net_listener_free(srv->listener);
		free(srv);
		return r;
	}
	*ret = srv;
	return 0;
}

int rpc_server_listen(struct rpc_server *srv, const struct addr *a)
{
	return net_listener_add(srv->listener, a);
}

void rpc_server_stop(struct rpc_server *srv, rpc_server_stopped_fn fn, void *userdata)
{
	srv->stopping = true;
	srv->stopped_fn = fn;
	srv->stopped_userdata = userdata;
	net_listener_close(srv->listener);
	for (struct server_conn *sc = srv->conns; sc; sc = sc->next)
		rpc_server_session_shutdown(sc->session);
	server_maybe_stopped(srv);
}

void rpc_server_free(struct rpc_server *srv)
{
	if (!srv)
		return;
	net_listener_free(srv->listener);
	while (srv->conns) {
		struct server_conn *sc = srv->conns;
		rpc_conn_free(sc->conn);
		server_conn_free(sc);
	}
	loop_timer_free(srv->trim);
	free(srv);
}

unsigned rpc_server_connections(const struct rpc_server *srv)
{
	return srv->n_conns;
}
