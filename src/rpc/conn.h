/* Binds a sans-I/O HTTP/2 session (server or client) to a socket in the
 * event loop: reads feed it, its output is written with backpressure, its
 * deadlines become a loop timer. When the session is done or the peer
 * breaks the protocol or vanishes, the connection closes itself and tells
 * its owner through on_close (after which it is already freed). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/macro.h"
#include "loop/loop.h"
#include "net/addr.h"

struct rpc_conn;

struct rpc_session_ops {
	/* now: when the bytes arrived (now_usec() clock). */
	int (*feed)(void *session, const uint8_t *data, size_t len, uint64_t now);
	ssize_t (*pull)(void *session, const uint8_t **ret);
	bool (*alive)(void *session);
	uint64_t (*next_deadline)(void *session);
	void (*expire)(void *session, uint64_t now);
	/* Keep reading while the output waits for the socket. A server stops
	 * reading then (a client that sends calls and reads no answers is held
	 * back); a client must not: were both ends to stop, each waiting for
	 * the other to read, a call streaming both ways would stall for good
	 * (a bidirectional echo of 1 MiB messages did). */
	bool read_while_blocked;
};

extern const struct rpc_session_ops rpc_server_session_ops;
extern const struct rpc_session_ops rpc_client_session_ops;

/* reason: 0 for an orderly end, -errno or -EPROTO otherwise. Called once
 * the connection is freed, so it is not handed on. */
typedef void (*rpc_conn_close_fn)(int reason, void *userdata);

/* Takes ownership of fd, a connected socket (net/connector.c makes them
 * for clients), even when it fails. */
int rpc_conn_new(struct loop *l, int fd, const struct rpc_session_ops *ops, void *session, rpc_conn_close_fn on_close,
		 void *userdata, struct rpc_conn **ret);
/* Closes the socket; does not free the session nor call on_close. Accepts
 * NULL. */
void rpc_conn_free(struct rpc_conn *c);
DEFINE_FREEP(struct rpc_conn, rpc_conn_free)
/* The session has output to send (what its notify callback should call):
 * the connection writes it at the end of this loop round. Cannot fail. */
void rpc_conn_kick(struct rpc_conn *c);
/* When bytes last came from the peer (now_usec() clock); the creation
 * time until then. */
uint64_t rpc_conn_last_active(const struct rpc_conn *c);
/* Frees the output buffer when nothing is waiting in it (a quiet
 * connection after a burst); it grows again when needed. */
void rpc_conn_release_buffers(struct rpc_conn *c);
/* Writes what the session has queued (a GOAWAY), as far as the socket
 * takes it now, then closes like rpc_conn_free(). */
void rpc_conn_flush_and_free(struct rpc_conn *c);

/* A client's side: the client calls (unary.c, stream.c, channel.c) share
 * these. */
struct rpc_client_session;
/* A client session's connect has ended (fd as connector_done_fn gives
 * it: the socket, or -errno): rpc_conn_new() with it, or fd's error. */
int rpc_conn_new_client(struct loop *l, int fd, struct rpc_client_session *session, rpc_conn_close_fn on_close,
			void *userdata, struct rpc_conn **ret);
/* What a client's calls are told when its connection ends before they
 * do: "connection closed: " and the reason (rpc_conn_close_fn's). */
void rpc_conn_closed_message(int reason, char *buf, size_t size);
/* The calls still open on session end that way, UNAVAILABLE. */
void rpc_conn_closed_abort(struct rpc_client_session *session, int reason);
/* ... and when connecting to a failed with r (-errno): "deadline exceeded
 * while connecting to A" when it timed out at or past deadline (returns
 * true), else "cannot connect to A: " and why (false). */
bool rpc_conn_connect_failed_message(const struct addr *a, int r, uint64_t deadline, char *buf, size_t size);
