/* One client HTTP/2 connection in the event loop carrying any number of
 * calls at once, unary and streaming: what a host command that needs
 * several calls on one connection builds on (maitctl exec: Start beside
 * SendInput, Resize and SendSignal; maitctl forward: one Tunnel stream per
 * accepted connection). unary.c and stream.c are the one-call cases, each
 * with a connection of its own. */
#pragma once

#include <stdint.h>

#include "loop/loop.h"
#include "net/addr.h"
#include "rpc/client-session.h"

struct rpc_channel;

/* Once, after the connection is gone (the peer closed it, it could not be
 * made, it failed), after every pending call got its answer (UNAVAILABLE
 * or DEADLINE_EXCEEDED with the same message). The channel is freed then. */
typedef void (*rpc_channel_closed_fn)(int code, const char *message, void *userdata);

/* Connects in the background (net/connector.c: hybrid vsock included)
 * within connect_timeout_usec (0: none). Calls may be made at once: they
 * wait for the connection. */
int rpc_channel_open(struct loop *l, const struct addr *a, uint64_t connect_timeout_usec,
		     rpc_channel_closed_fn on_closed, void *userdata, struct rpc_channel **ret);
/* The session the calls are made on, with client-session.h's API:
 * rpc_client_session_call() (unary), rpc_client_session_start()
 * (streaming), rpc_client_call_send(), _close_send(), _cancel(). What they
 * queue is written by the channel at the end of the loop round. */
struct rpc_client_session *rpc_channel_session(struct rpc_channel *ch);
/* True once the connection is up (calls made before wait for it). */
bool rpc_channel_connected(const struct rpc_channel *ch);
/* Closes now: pending calls are answered UNAVAILABLE "channel closed"
 * first; on_closed does not run. Accepts NULL. */
void rpc_channel_free(struct rpc_channel *ch);
DEFINE_FREEP(struct rpc_channel, rpc_channel_free)
