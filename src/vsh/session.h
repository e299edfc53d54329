/* One vshd session, server side, run in a process of its own: read the
 * SetupConnectionRequest, start the target on a PTY or on pipes, forward
 * stdio, resizes and signals, and end with EXITED once every byte the
 * target wrote has been sent. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsh/target.h"

/* After the target exits, output still held open by a process it left
 * behind is waited for this long before the session ends. */
#define VSH_DRAIN_USEC (100 * 1000ull)
/* The client must send its SetupConnectionRequest within this time. */
#define VSH_SETUP_TIMEOUT_MSEC 10000

/* Once the target runs, the session is a state machine (vsh_session_step):
 *
 *   RUNNING      the target runs; stdio, resizes and signals are forwarded.
 *   DRAINING     the target has been reaped; its output is read until every
 *                output is closed or VSH_DRAIN_USEC have passed.
 *   EXITED       final: all output has been read; the client gets EXITED.
 *   CLIENT_GONE  final: the client closed, broke the framing or said it is
 *                done; the target (if still running) is hung up.
 *   FAILED       final: a watch or a buffer failed; the client gets FAILED,
 *                the target a hang-up.
 *
 *   RUNNING  --target exited-->  DRAINING  --output done-->  EXITED
 *   RUNNING, DRAINING  --fault-->  FAILED
 *   any state  --client gone-->  CLIENT_GONE (nothing can be told any more)
 *
 * Every other event leaves the state as it is; the loop stops at a final
 * state. Before RUNNING, setup is straight-line code: reading the request,
 * preparing the target, opening a PTY or pipes, registering every watch,
 * starting the target; a failure there answers FAILED in the
 * SetupConnectionResponse. */
enum vsh_session_state {
	VSH_SESSION_RUNNING,
	VSH_SESSION_DRAINING,
	VSH_SESSION_EXITED,
	VSH_SESSION_CLIENT_GONE,
	VSH_SESSION_FAILED,
};

enum vsh_session_event {
	VSH_EVENT_TARGET_EXITED, /* the target was reaped */
	VSH_EVENT_OUTPUT_DONE,	 /* no output of the target is open any more */
	VSH_EVENT_CLIENT_GONE,	 /* EOF, a read or write error, a bad frame, a non-READY status */
	VSH_EVENT_FAULT,	 /* out of memory, a watch that cannot be updated */
};

/* The transition function: pure, no I/O. */
enum vsh_session_state vsh_session_step(enum vsh_session_state st, enum vsh_session_event ev);
bool vsh_session_state_is_final(enum vsh_session_state st);
const char *vsh_session_state_name(enum vsh_session_state st);

/* Runs the session on fd (taken over). received holds the bytes vshd
 * already read from fd (at most VSH_FRAME_MAX: the request, maybe more).
 * summary gets one line for the log ("user root: sh exited with status
 * 0"). Returns 0 when the session ran, -errno when it failed before READY. */
int vsh_session_run(int fd, const uint8_t *received, size_t received_len, const struct vsh_policy *policy,
		    char *summary, size_t summary_size);
