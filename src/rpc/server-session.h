/* The gRPC server side of one HTTP/2 connection, without any I/O: feed it
 * the bytes that arrived, pull the bytes to send. Unary, client-streaming,
 * server-streaming and bidirectional calls.
 *
 * A handler gets the first decoded request message and answers with
 * rpc_call_reply() or rpc_call_fail(), now or later; a streaming handler
 * sends with rpc_call_send() and ends with rpc_call_finish(). A handler
 * that answers later must set a cancel callback: when the peer resets the
 * stream, the deadline passes, the connection goes away or a later request
 * message is refused (too large, undecodable), that callback runs and the
 * call is freed right after it, so the handler must forget the call there.
 *
 * Streaming (docs/architecture.md, "How a streaming call flows"): HTTP/2
 * flow control is the back-pressure both ways. Receiving, a stream holds
 * at most its window (16 KiB, up to 1 MiB while it sends in bulk) beyond
 * the message being decoded; a paused receiver returns no window, so the
 * peer stops. Sending, rpc_call_send() never drops a message but says when
 * more than RPC_SEND_HIGH_WATER is queued; the writable callback runs once
 * the queue is below RPC_SEND_LOW_WATER. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/macro.h"
#include "rpc/status.h"
#include "rpc/wire.h"

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
/* A stream ended (answered, reset, expired): its memory is free. May run
 * inside feed() or pull(); it must not call back into the session. */
typedef void (*rpc_stream_end_fn)(void *userdata);

/* Streaming calls: the following request messages, one at a time (freed
 * by the core when the callback returns); the client's half-close, after
 * the last message; room in the send queue again. */
typedef void (*rpc_message_fn)(struct rpc_call *call, const ProtobufCMessage *msg, void *userdata);
typedef void (*rpc_end_fn)(struct rpc_call *call, void *userdata);
typedef void (*rpc_writable_fn)(struct rpc_call *call, void *userdata);
typedef void (*rpc_data_fn)(struct rpc_call *call, const uint8_t *data, size_t len, void *userdata);

struct rpc_method {
	const char *path; /* "/vm_tools.Maitred/Mount" */
	const ProtobufCMessageDescriptor *input;
	rpc_handler_fn handler;
	/* Both false: unary. A client-streaming handler is called as soon as
	 * the first message is in (a call ended without any is answered
	 * INVALID_ARGUMENT "no request message" by the core; OK when the
	 * method is bidirectional: nothing asked, nothing answered) and takes the
	 * rest through rpc_call_set_receiver(); otherwise the handler is
	 * called once the client has half-closed after its one message. */
	bool client_streaming;
	bool server_streaming;
};

/* What a server serves: a list of method tables, each with the userdata its
 * handlers get (several services on one endpoint, or one service whose
 * method families keep their own state). A path is looked up in order. */
struct rpc_service {
	const struct rpc_method *methods;
	size_t n_methods;
	void *userdata;
	const struct rpc_service *next;
	/* NULL, or n_methods entries: a method whose entry is set is refused
	 * from its headers, before any body is read, with PERMISSION_DENIED
	 * "<entry> is disabled on this guest" (the entry names what was
	 * switched off: the method, or its whole service). The owner decides
	 * which; the core only consults it. */
	const char *const *disabled;
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
/* For the owner's housekeeping (server.c trims the heap once streams
 * stop ending for a while). */
void rpc_server_session_set_stream_end(struct rpc_server_session *s, rpc_stream_end_fn fn, void *userdata);
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
/* Why the peer is being let go for breaking HTTP/2 ("PROTOCOL_ERROR:
 * RST_STREAM: stream_id == 0", the GOAWAY's code and reason, or nghttp2's
 * error), or NULL: a session that stops being alive with this NULL ended
 * normally (the peer left, or a graceful shutdown). */
const char *rpc_server_session_failure(const struct rpc_server_session *s);
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

/* rpc_call_send() + rpc_call_finish(OK): the answer of a unary call. */
void rpc_call_reply(struct rpc_call *c, const ProtobufCMessage *response);
/* rpc_call_finish() with an error code: trailers-only when nothing was
 * sent, else trailers after the messages queued. */
void rpc_call_fail(struct rpc_call *c, int code, const char *fmt, ...) _printf_(3, 4);
/* Queues one response message (the response headers go with the first).
 * Never drops it: returns 0, or 1 when the queue is above
 * RPC_SEND_HIGH_WATER (stop producing until the writable callback runs);
 * -E2BIG for a message over RPC_MAX_MESSAGE_SIZE, -ENOMEM (nothing queued
 * either way, the call goes on). */
int rpc_call_send(struct rpc_call *c, const ProtobufCMessage *msg);
/* The same for a message encoded elsewhere (len bytes, without the
 * 5-byte prefix): a worker process that produced it, for example. */
int rpc_call_send_encoded(struct rpc_call *c, const uint8_t *data, size_t len);
/* The same for len bytes that fill writes in place in the queue (no
 * copy: a file worker's data read straight from its shared memory);
 * fill's -errno queues nothing and is returned. */
int rpc_call_send_filled(struct rpc_call *c, size_t len, rpc_fill_fn fill, void *arg);
/* The call's own marks instead of RPC_SEND_HIGH_WATER and _LOW_WATER:
 * a call that relays a producer it can pause (a worker process) needs
 * less queued to keep the connection busy, and many such calls at once
 * would otherwise hold a megabyte each. */
void rpc_call_set_send_marks(struct rpc_call *c, size_t high, size_t low);
/* Runs (from pull(), outside nghttp2) once the queue went below
 * RPC_SEND_LOW_WATER after rpc_call_send() returned 1. */
void rpc_call_set_writable(struct rpc_call *c, rpc_writable_fn fn, void *userdata);
/* Ends the call after the queued messages: trailers with grpc-status and
 * grpc-message (fmt may be NULL: none; a trailers-only response when
 * nothing was sent). The call
 * is freed. A client still sending then gets the stream reset (NO_ERROR)
 * once the answer is out. */
void rpc_call_finish(struct rpc_call *c, int code, const char *fmt, ...) _printf_(3, 4);
/* Client streaming: the following messages and the half-close. Until it is
 * set (and while paused) messages wait in the stream's window, which is
 * not given back: the peer stops sending. */
void rpc_call_set_receiver(struct rpc_call *c, rpc_message_fn on_message, rpc_end_fn on_end, void *userdata);
/* With a receiver set: a following message that is exactly one bytes
 * field numbered field (1-15; pb/bytes-field.h: a file's data, a tunnel's
 * bytes) goes to on_data undecoded, its bytes read in place in the
 * stream's buffer (valid during the callback only, and no longer once the
 * callback ends the call); any other message to on_message, decoded.
 * protobuf-c would allocate and copy every such message. */
void rpc_call_set_data_receiver(struct rpc_call *c, unsigned field, rpc_data_fn on_data);
void rpc_call_pause_receiving(struct rpc_call *c);
/* Delivery resumes from the session's next pull(), not from inside this. */
void rpc_call_resume_receiving(struct rpc_call *c);
/* Encoded response bytes queued and not yet handed to HTTP/2. */
size_t rpc_call_queued(const struct rpc_call *c);
void rpc_call_set_cancel(struct rpc_call *c, rpc_cancel_fn fn, void *userdata);
const char *rpc_call_method(const struct rpc_call *c);
const char *rpc_call_peer(const struct rpc_call *c);
void *rpc_call_service_userdata(const struct rpc_call *c);
