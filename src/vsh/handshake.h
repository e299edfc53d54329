/* The vsh handshake's blocking steps, shared by vshd, its sessions and the
 * client: sending a SetupConnectionResponse and reading one whole frame,
 * both bounded in time. (The sessions' forwarding is non-blocking, on the
 * loop; only these steps, before and at its edges, block.) */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vsh.pb-c.h"

/* Sends all of data on a non-blocking socket, waiting up to timeout_msec
 * for room each time it is full. -ETIMEDOUT, -errno (EPIPE: the peer is
 * gone; SIGPIPE is not raised). */
int vsh_send_all(int fd, const uint8_t *data, size_t len, int timeout_msec);

/* Sends a SetupConnectionResponse, waiting up to timeout_msec for room (0:
 * one attempt that does not wait, for answers that are a courtesy). */
int vsh_send_setup_response(int fd, VmTools__Vsh__ConnectionStatus status, const char *description, int32_t pid,
			    int timeout_msec);

/* Reads from fd into buf (size bytes, *len of them already filled) until
 * it starts with one whole frame, waiting until deadline (monotonic usec).
 * Returns 0 with the message and the frame's total length (bytes after it
 * stay in buf); -EMSGSIZE when the frame would be over VSH_MAX_MESSAGE,
 * -ETIMEDOUT, -ESHUTDOWN when the peer closed the connection, -errno when
 * reading failed. */
int vsh_read_frame(int fd, uint8_t *buf, size_t size, size_t *len, uint64_t deadline, const uint8_t **ret_msg,
		   size_t *ret_msg_len, size_t *ret_frame_len);
