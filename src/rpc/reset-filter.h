/* rpc-internal: takes a client's RST_STREAM for a stream it never opened
 * out of the bytes before nghttp2 sees them.
 *
 * HTTP/2 makes such a reset a connection error, and nghttp2 ends the
 * connection for it (GOAWAY "RST_STREAM: stream in idle"), failing every
 * call in flight. gRPC's own C core sends exactly that when a call that
 * was waiting for a stream slot is cancelled between getting its stream
 * id and writing its HEADERS: a burst of short-deadline calls from
 * grpcio or grpc++ (the ChromeOS host) does it now and then. grpc++'s
 * server, which maitred replaces, ignores the reset; so do we. Only a
 * well-formed RST_STREAM on a client stream id above every HEADERS seen
 * is dropped; anything else, malformed frames included, goes through. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct reset_filter {
	size_t preface_left;	/* of the client's 24-byte preface */
	uint8_t head[9];	/* a frame header cut between two reads */
	size_t head_len;
	size_t payload_left;	/* of the frame being passed or dropped */
	bool dropping;
	uint32_t highest_opened; /* the highest stream id a HEADERS named */
	uint64_t dropped;	/* resets taken out, for the curious */
};

void reset_filter_init(struct reset_filter *f);

/* Hands data on through pass(), in order, without the dropped frames; a
 * frame header cut at the end is kept until the next call. Stops at the
 * first error of pass() and returns it. */
typedef int (*reset_filter_pass_fn)(const uint8_t *data, size_t len, void *arg);
int reset_filter_feed(struct reset_filter *f, const uint8_t *data, size_t len, reset_filter_pass_fn pass, void *arg);
