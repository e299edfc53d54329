/* rpc-internal: a streaming call's send queue, shared by the server and
 * client sessions. Encoded messages (5-byte prefix included), each in one
 * allocation, handed to HTTP/2 as its flow control allows. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/wire.h"

struct rpc_outmsg;

struct rpc_outq {
	struct rpc_outmsg *head, *tail;
	size_t bytes; /* queued, not yet read */
};

/* Encodes and appends one message: -E2BIG over RPC_MAX_MESSAGE_SIZE,
 * -ENOMEM (nothing queued either way). */
int rpc_outq_push(struct rpc_outq *q, const ProtobufCMessage *msg);
/* The same for a message already encoded (len bytes, no prefix). */
int rpc_outq_push_encoded(struct rpc_outq *q, const uint8_t *data, size_t len);
/* The same for a message that fill (rpc/wire.h) writes in place, where
 * it would otherwise be read into a buffer and copied (a file worker's
 * data read from its shared memory). fill's -errno queues nothing. */
int rpc_outq_push_filled(struct rpc_outq *q, size_t len, rpc_fill_fn fill, void *arg);
/* The fills of the two pushes above: len bytes copied from arg; the
 * message arg packed (len: its packed size). */
int rpc_fill_copy(uint8_t *buf, size_t len, void *arg);
int rpc_fill_packed(uint8_t *buf, size_t len, void *arg);
/* Copies up to len queued bytes to buf; returns how many. */
size_t rpc_outq_read(struct rpc_outq *q, uint8_t *buf, size_t len);
void rpc_outq_clear(struct rpc_outq *q);
/* Drops the messages not yet begun (a message partly read stays, so that
 * the stream's framing holds). */
void rpc_outq_drop_unsent(struct rpc_outq *q);
