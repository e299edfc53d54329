/* A growable byte buffer with a hard cap, and sending it to a socket;
 * writing bytes out whole. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/* -ENOMEM on allocation failure, -E2BIG if len would pass limit. */
int buf_append(struct buf *b, const uint8_t *data, size_t len, size_t limit);
void buf_consume(struct buf *b, size_t n);
void buf_clear(struct buf *b);
/* Sends as much as the socket takes without blocking; what was sent is
 * consumed. 0 when all is sent or the socket is full, -errno on failure. */
int buf_send(int fd, struct buf *b);
/* The same for bytes in place (no buffer, no copy): how many the socket
 * took without blocking (len: all of them), or -errno on failure (whatever
 * went before it no longer matters: the socket is done with). */
ssize_t buf_send_some(int fd, const uint8_t *data, size_t len);
/* Writes every byte to fd (blocking; a non-blocking fd, such as a terminal
 * a parent set O_NONBLOCK on, is waited for with poll). 0, or -errno when
 * the reader has gone (EPIPE: SIGPIPE must be ignored) or it fails. */
int buf_write_all(int fd, const uint8_t *data, size_t len);
