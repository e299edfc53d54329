/* The streamtest.Stream service (tests/proto/streamtest.proto) on the rpc
 * core, written as a handler of each kind should be: Echo (bidirectional)
 * pauses receiving while its send queue is full, Countdown (server
 * streaming) produces until the queue is full and goes on when writable,
 * Add (client streaming) answers at the half-close, or early (a negative
 * value: FAILED_PRECONDITION). Shared by the unit tests, the failmalloc
 * sweep, the fuzz target and rpc-stream-server. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "rpc/server-session.h"

struct stream_stats {
	int calls, cancelled, writable, high_water, messages, ended;
	/* Messages Add took undecoded (stream_raw_add). */
	int raw;
	size_t max_queued;
	/* The last Echo call started (NULL once it is over). */
	struct rpc_call *echo;
};

extern struct stream_stats stream_stats;
/* Echo pauses receiving after its first message (the test resumes). */
extern bool stream_pause_echo;
/* Add takes the Chunks that are data alone in place
 * (rpc_call_set_data_receiver); one whose data starts with 0xEE fails
 * the call from inside the callback. */
extern bool stream_raw_add;
extern const struct rpc_service stream_service;
/* Called on every cancel callback (NULL: none); rpc-stream-server prints. */
extern void (*stream_cancel_hook)(void);

void stream_service_reset(void);
