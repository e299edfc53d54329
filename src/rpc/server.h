/* A gRPC server: listening sockets, the peer policy, a cap on connections,
 * one rpc_conn + rpc_server_session per accepted peer, graceful stop. */
#pragma once

#include "loop/loop.h"
#include "net/sock.h"
#include "rpc/server-session.h"

struct rpc_server;

enum rpc_server_event {
	RPC_SERVER_PEER_REFUSED,	/* policy said no */
	RPC_SERVER_PEER_OVER_LIMIT,	/* too many connections */
	RPC_SERVER_PEER_PROTOCOL_ERROR, /* dropped for breaking HTTP/2 */
	RPC_SERVER_ACCEPT_FAILED,
	RPC_SERVER_PEER_SILENT,	 /* no HTTP/2 preface in time */
	RPC_SERVER_PEER_FAILED,	 /* could not set the connection up (error) */
	RPC_SERVER_PEER_EVICTED, /* longest idle, closed to make room (peer: the one let go) */
};

/* detail: for PEER_PROTOCOL_ERROR, what the peer did wrong
 * (rpc_server_session_failure()), or NULL; NULL for the others. */
typedef void (*rpc_server_event_fn)(enum rpc_server_event ev, const char *peer, int error, const char *detail,
				    void *userdata);
typedef void (*rpc_server_stopped_fn)(void *userdata);

struct rpc_server_config {
	const struct rpc_service *service;
	struct rpc_limits limits;
	struct peer_policy policy;
	/* At the cap, a new peer closes the connection idle longest (no call
	 * in flight) with GOAWAY; when every one has a call, it is refused. */
	unsigned max_connections;
	/* A peer must have sent its preface by then (0: no limit). */
	uint64_t handshake_timeout_usec;
	rpc_server_event_fn on_event;
	/* Calls refused before reaching a handler (optional). */
	rpc_reject_fn on_reject;
	void *userdata;
};

void rpc_server_config_init(struct rpc_server_config *cfg, const struct rpc_service *svc);

int rpc_server_new(struct loop *l, const struct rpc_server_config *cfg, struct rpc_server **ret);
int rpc_server_listen(struct rpc_server *srv, const struct addr *a);
/* Stops accepting, sends GOAWAY everywhere; calls fn once every connection
 * has finished its calls and closed. */
void rpc_server_stop(struct rpc_server *srv, rpc_server_stopped_fn fn, void *userdata);
void rpc_server_free(struct rpc_server *srv);
DEFINE_FREEP(struct rpc_server, rpc_server_free)
unsigned rpc_server_connections(const struct rpc_server *srv);
