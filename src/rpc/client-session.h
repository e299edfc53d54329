/* The gRPC client side of one HTTP/2 connection, without any I/O: start
 * unary calls, feed the bytes that arrived, pull the bytes to send. Each
 * call's reply callback runs exactly once. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/macro.h"
#include "rpc/status.h"

struct rpc_client_session;

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

int rpc_client_session_feed(struct rpc_client_session *s, const uint8_t *data, size_t len);
ssize_t rpc_client_session_pull(struct rpc_client_session *s, const uint8_t **ret);
bool rpc_client_session_alive(struct rpc_client_session *s);
unsigned rpc_client_session_pending_calls(const struct rpc_client_session *s);
uint64_t rpc_client_session_next_deadline(struct rpc_client_session *s);
void rpc_client_session_expire(struct rpc_client_session *s, uint64_t now);
/* Fails every pending call with code/message (e.g. the socket died). */
void rpc_client_session_abort(struct rpc_client_session *s, int code, const char *message);
/* Ends the connection once the pending calls are done (GOAWAY). */
void rpc_client_session_shutdown(struct rpc_client_session *s);
