/* One streaming gRPC call on a connection of its own, driven by the event
 * loop: connect (within the call's deadline), run the call, close. The
 * client side of a file transfer (maitctl) and of the tests. Messages go
 * through the client session's streaming calls (client-session.h); this
 * binds one to a socket, as unary.c does for a unary call. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "loop/loop.h"
#include "net/addr.h"

struct rpc_stream_call;

struct rpc_stream_call_ops {
	/* One response message (without its prefix). */
	void (*on_message)(struct rpc_stream_call *sc, const uint8_t *data, size_t len, void *userdata);
	/* The send queue has room again after send returned 1 (optional). */
	void (*on_writable)(struct rpc_stream_call *sc, void *userdata);
	/* Once, from the loop, after the connection is gone: the status. The
	 * call is freed then. */
	void (*on_done)(int code, const char *message, void *userdata);
};

/* Messages may be sent at once (they go out once connected). on_done runs
 * exactly once unless this returns < 0. timeout_usec 0: none. */
int rpc_stream_call_start(struct loop *l, const struct addr *a, const char *path, uint64_t timeout_usec,
			  const struct rpc_stream_call_ops *ops, void *userdata, struct rpc_stream_call **ret);
/* As rpc_client_call_send(): 0, 1 above the high-water mark (wait for
 * on_writable), <0 (nothing queued). -EPIPE once the call has ended. */
int rpc_stream_call_send(struct rpc_stream_call *sc, const ProtobufCMessage *msg);
int rpc_stream_call_close_send(struct rpc_stream_call *sc);
/* Ends the call (CANCELLED); on_done follows from the loop. */
void rpc_stream_call_cancel(struct rpc_stream_call *sc);
