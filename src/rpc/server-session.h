/* The gRPC server side of one HTTP/2 connection, without any I/O: feed it
 * the bytes that arrived, pull the bytes to send. Unary calls only.
 *
 * A handler gets the decoded request and answers with rpc_call_reply() or
 * rpc_call_fail(), now or later. A handler that answers later must set a
 * cancel callback: when the peer resets the stream, the deadline passes or
 * the connection goes away, that callback runs and the call is freed right
 * after it, so the handler must forget the call there. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/macro.h"
#include "rpc/status.h"

struct rpc_call;
struct rpc_server_session;

typedef void (*rpc_handler_fn)(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
typedef void (*rpc_cancel_fn)(struct rpc_call *call, void *userdata);
/* A call refused before any handler saw it (unknown method, bad
 * compression, oversized message or headers, undecodable request, ...):
 * the peer's label, the :path, and the status sent. For the program to
 * log; the library does not. */
typedef void (*rpc_reject_fn)(const char *peer, const char *path, int code, const char *message, void *userdata);
/* Output became pending outside of feed(): the transport should write. */
typedef void (*rpc_notify_fn)(void *userdata);

struct rpc_method {
	const char *path; /* "/vm_tools.Maitred/Mount" */
	const ProtobufCMessageDescriptor *input;
	rpc_handler_fn handler;
};

struct rpc_service {
	const struct rpc_method *methods;
	size_t n_methods;
	void *userdata;
};

struct rpc_limits {
	uint32_t max_concurrent_streams;
	uint32_t max_header_list_size;
	/* Request bytes buffered across all streams of one connection. */
	size_t max_buffered;
};

void rpc_limits_init(struct rpc_limits *l);

int rpc_server_session_new(const struct rpc_service *svc, const struct rpc_limits *limits, rpc_notify_fn notify,
			   void *notify_userdata, struct rpc_server_session **ret);
/* Cancels every call still pending. Accepts NULL. */
void rpc_server_session_free(struct rpc_server_session *s);
DEFINE_FREEP(struct rpc_server_session, rpc_server_session_free)

void rpc_server_session_set_notify(struct rpc_server_session *s, rpc_notify_fn notify, void *userdata);
void rpc_server_session_set_reject(struct rpc_server_session *s, rpc_reject_fn fn, void *userdata);
/* A label for logs ("unix pid 12 uid 0"). */
void rpc_server_session_set_peer(struct rpc_server_session *s, const char *desc);
/* now: the caller's monotonic clock (usec) when the bytes arrived; the
 * session reads no clock itself, so its deadlines (grpc-timeout) are
 * relative to it. Returns -EPROTO when the peer broke the protocol: send
 * what is pending, then drop the connection. */
int rpc_server_session_feed(struct rpc_server_session *s, const uint8_t *data, size_t len, uint64_t now);
/* Bytes to send next (valid until the next call); 0 when none, <0 on error. */
ssize_t rpc_server_session_pull(struct rpc_server_session *s, const uint8_t **ret);
/* False once both directions are done: close the connection. */
bool rpc_server_session_alive(struct rpc_server_session *s);
/* Earliest call deadline (on the clock given to feed), or USEC_INFINITY. */
uint64_t rpc_server_session_next_deadline(struct rpc_server_session *s);
/* Fails every call whose deadline is <= now with DEADLINE_EXCEEDED. */
void rpc_server_session_expire(struct rpc_server_session *s, uint64_t now);
/* Graceful end: GOAWAY; calls in flight finish, new streams are refused. */
void rpc_server_session_shutdown(struct rpc_server_session *s);
unsigned rpc_server_session_pending_calls(const struct rpc_server_session *s);
/* Request bytes held right now (at most limits.max_buffered). */
size_t rpc_server_session_buffered(const struct rpc_server_session *s);
/* True once the peer has sent a whole, valid frame (its preface done). */
bool rpc_server_session_greeted(const struct rpc_server_session *s);

void rpc_call_reply(struct rpc_call *c, const ProtobufCMessage *response);
void rpc_call_fail(struct rpc_call *c, int code, const char *fmt, ...) _printf_(3, 4);
void rpc_call_set_cancel(struct rpc_call *c, rpc_cancel_fn fn, void *userdata);
const char *rpc_call_method(const struct rpc_call *c);
const char *rpc_call_peer(const struct rpc_call *c);
void *rpc_call_service_userdata(const struct rpc_call *c);
