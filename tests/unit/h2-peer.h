/* A real HTTP/2 client (nghttp2) wired to an rpc_server_session in memory,
 * for unit tests that need custom headers, bodies or raw bytes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/macro.h"
#include "rpc/server-session.h"

struct h2_result {
	int http_status;
	int grpc_status; /* -1 when absent */
	char grpc_message[512];
	uint8_t data[8192];
	size_t data_len;
	bool closed;
	uint32_t rst_code;
	char accept_encoding[64];
	/* Every DATA byte of the response (data[] keeps the first 8 KiB). */
	struct buf all;
};

struct h2_peer;

struct h2_peer *h2_peer_new(void);
void h2_peer_free(struct h2_peer *p);
DEFINE_FREEP(struct h2_peer, h2_peer_free)
/* Starts a request; body may be NULL. With end_stream false the stream stays
 * open after the body. Returns the stream id. */
int32_t h2_peer_request(struct h2_peer *p, const char *path, const char *content_type, const uint8_t *body, size_t len,
			const char *timeout, bool end_stream);
/* One more header on every following request (name NULL: none). */
void h2_peer_set_header(struct h2_peer *p, const char *name, const char *value);
/* Body: 5-byte gRPC prefix + message. */
size_t h2_grpc_frame(uint8_t *out, const uint8_t *msg, size_t len, bool compressed);
void h2_peer_reset(struct h2_peer *p, int32_t stream_id);
/* More of the body of a stream left open by h2_peer_request, in DATA frames
 * of its own (len 0: just END_STREAM). body must live until pumped. */
int h2_peer_send(struct h2_peer *p, int32_t stream_id, const uint8_t *body, size_t len, bool end_stream);
/* The clock h2_pump gives the server with the bytes (usec; 0: now_usec()). */
void h2_peer_set_clock(struct h2_peer *p, uint64_t now);
/* Moves bytes both ways until neither side has anything to say. Returns
 * the server's last feed() result. */
int h2_pump(struct h2_peer *p, struct rpc_server_session *s);
/* When set, h2_pump appends every byte the server sends to it. */
extern struct buf *h2_pump_capture;
/* Called by h2_pump after every chunk fed to the server (NULL: none). */
extern void (*h2_pump_hook)(struct rpc_server_session *s);
struct h2_result *h2_peer_result(struct h2_peer *p, int32_t stream_id);
bool h2_peer_goaway(struct h2_peer *p, uint32_t *ret_error);

/* Streaming requests: a stream whose body is appended to as the test goes
 * (sent as the server's window allows), half-closed on demand. */
int32_t h2_peer_start(struct h2_peer *p, const char *path, const char *timeout);
/* Appends one message (prefixed) to the stream's body. */
void h2_peer_send_msg(struct h2_peer *p, int32_t id, const uint8_t *msg, size_t len, bool compressed);
void h2_peer_close_send(struct h2_peer *p, int32_t id);
/* Body bytes not yet handed to HTTP/2 (held back by the server's window). */
size_t h2_peer_unsent(struct h2_peer *p, int32_t id);
/* WINDOW_UPDATE frames the server sent for the stream. */
unsigned h2_peer_window_updates(struct h2_peer *p, int32_t id);
/* While held, received DATA is not acknowledged: the server's window for
 * its responses closes. Releasing acknowledges what was held. */
void h2_peer_hold_reads(struct h2_peer *p, bool hold);
/* The n-th response message (from 0): its payload; false when absent. */
bool h2_result_message(struct h2_result *r, size_t n, const uint8_t **ret, size_t *ret_len);
size_t h2_result_messages(struct h2_result *r);
