/* The gRPC client side of one HTTP/2 connection, without any I/O: start
 * unary or streaming calls, feed the bytes that arrived, pull the bytes to
 * send. Each call's reply (or done) callback runs exactly once. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/macro.h"
#include "rpc/status.h"
#include "rpc/wire.h"

struct rpc_client_session;
struct rpc_client_call;

/* code is a gRPC status; on RPC_OK, data/len is the response message
 * (without prefix). message is the decoded grpc-message, maybe empty. */
typedef void (*rpc_reply_fn)(int code, const char *message, const uint8_t *data, size_t len, void *userdata);

int rpc_client_session_new(struct rpc_client_session **ret);
/* Pending calls are answered UNAVAILABLE "connection closed". */
void rpc_client_session_free(struct rpc_client_session *s);
DEFINE_FREEP(struct rpc_client_session, rpc_client_session_free)

/* timeout_usec 0 means none; otherwise it travels as grpc-timeout and the
 * call fails locally with DEADLINE_EXCEEDED when it passes. */
int rpc_client_session_call(struct rpc_client_session *s, const char *path, const ProtobufCMessage *request,
			    uint64_t timeout_usec, rpc_reply_fn fn, void *userdata);

/* A streaming call (any kind: a unary or server-streaming method is one
 * message then close_send). Response messages are delivered as they
 * complete; the window is given back as they are, so a slow on_message is
 * the back-pressure. After on_done the call is gone. */
struct rpc_client_stream_ops {
	/* One response message, without its prefix (at most 4 MiB). */
	void (*on_message)(struct rpc_client_call *c, const uint8_t *data, size_t len, void *userdata);
	/* The send queue is below RPC_SEND_LOW_WATER again (after send said 1);
	 * optional. Runs from pull(). */
	void (*on_writable)(struct rpc_client_call *c, void *userdata);
	/* Once: the status (grpc-status or a local one: deadline, cancel,
	 * connection lost, bad response). */
	void (*on_done)(struct rpc_client_call *c, int code, const char *message, void *userdata);
};

int rpc_client_session_start(struct rpc_client_session *s, const char *path, uint64_t timeout_usec,
			     const struct rpc_client_stream_ops *ops, void *userdata, struct rpc_client_call **ret);
/* Queues one request message: 0, or 1 when the queue is above
 * RPC_SEND_HIGH_WATER (wait for on_writable); -E2BIG over the message
 * limit, -ENOMEM, -EPIPE after close_send or the end (nothing queued). */
int rpc_client_call_send(struct rpc_client_call *c, const ProtobufCMessage *msg);
/* The half-close, after the queued messages. */
int rpc_client_call_close_send(struct rpc_client_call *c);
/* Back-pressure for a receiver that cannot take more now (maitctl
 * forward's local socket is full): the stream's window is not given back
 * while paused, so the server stops once it is used up (at most 1 MiB
 * more arrives, and is delivered). Resuming gives it back. */
void rpc_client_call_pause_receiving(struct rpc_client_call *c);
void rpc_client_call_resume_receiving(struct rpc_client_call *c);
/* Resets the stream; on_done runs now with CANCELLED. */
void rpc_client_call_cancel(struct rpc_client_call *c);

int rpc_client_session_feed(struct rpc_client_session *s, const uint8_t *data, size_t len);
ssize_t rpc_client_session_pull(struct rpc_client_session *s, const uint8_t **ret);
bool rpc_client_session_alive(struct rpc_client_session *s);
unsigned rpc_client_session_pending_calls(const struct rpc_client_session *s);
uint64_t rpc_client_session_next_deadline(struct rpc_client_session *s);
void rpc_client_session_expire(struct rpc_client_session *s, uint64_t now);
/* Fails every pending call with code/message (e.g. the socket died). */
void rpc_client_session_abort(struct rpc_client_session *s, int code, const char *message);
/* notify runs when output was queued outside feed() and pull(): a call
 * made, a message sent, a half-close, a cancel (rpc/channel.c writes it
 * then). It may run from inside the caller's call: it must only schedule. */
void rpc_client_session_set_notify(struct rpc_client_session *s, void (*notify)(void *userdata), void *userdata);
/* Ends the connection once the pending calls are done (GOAWAY). */
void rpc_client_session_shutdown(struct rpc_client_session *s);
