/* One vshd session, server side, run in a process of its own: read the
 * SetupConnectionRequest, start the target on a PTY or on pipes, forward
 * stdio, resizes and signals, and end with EXITED once every byte the
 * target wrote has been sent. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vsh/target.h"

/* After the target exits, output still held open by a process it left
 * behind is waited for this long before the session ends. */
#define VSH_DRAIN_USEC (100 * 1000ull)
/* The client must send its SetupConnectionRequest within this time. */
#define VSH_SETUP_TIMEOUT_MSEC 10000

/* Runs the session on fd (taken over). received holds the bytes vshd
 * already read from fd (at most VSH_FRAME_MAX: the request, maybe more).
 * summary gets one line for the log ("user root: sh exited with status
 * 0"). Returns 0 when the session ran, -errno when it failed before READY. */
int vsh_session_run(int fd, const uint8_t *received, size_t received_len, const struct vsh_policy *policy,
		    char *summary, size_t summary_size);
