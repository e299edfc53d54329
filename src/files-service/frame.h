/* What maitred and a Files worker say to each other (docs/files.md,
 * "Where the I/O runs"): one SOCK_SEQPACKET socketpair per call, one
 * frame per packet, a kind byte and its payload. Packets keep the framing
 * for free, and the socket's buffer is the back-pressure both ways: a
 * worker stuck on its disk stops reading, maitred's send then says
 * EAGAIN and it stops taking the client's data (HTTP/2's window closes);
 * a client that stops reading fills maitred's send queue, maitred stops
 * reading the worker, whose blocking send waits.
 *
 * maitred -> worker: JOB (the method's number, then the call's first
 * request message, encoded), to start a call.
 * Worker -> maitred: MSG (an encoded response message, passed on to the
 * client as it is), then DONE or ERROR (a status code and its message),
 * whose payloads start with a byte saying whether the worker can take
 * another JOB (pool.h); or REPLY, a call's one response and its OK end in
 * one packet (DONE's head, then the encoded message): one send and one
 * wake-up of maitred for a Stat, where MSG then DONE made two. A worker that goes away without either died.
 * maitred -> worker (Write, WriteTree): DATA, ENTRY (an encoded TreeEntry),
 * COMMIT (the client half-closed). The end of the socket without COMMIT
 * is an abort: the worker discards what it had written and exits.
 * Either way, BATCH: several frames in one packet (WriteTree's entries
 * and data, ReadTree's messages), each as its kind byte, its length
 * (4 bytes, little-endian) and its payload. A tree of small files made
 * two packets a file, each a send, a wake-up and a receive.
 * SLOT (worker -> maitred) and FREE (maitred -> worker): a Read's data
 * through the worker's shared memory instead of the socket (ring.h). */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

enum fsvc_frame_kind {
	FSVC_JOB = 'J',
	FSVC_MSG = 'M',
	FSVC_DONE = 'D',
	FSVC_REPLY = 'R',
	FSVC_ERROR = 'E',
	FSVC_DATA = 'd',
	FSVC_ENTRY = 'e',
	FSVC_COMMIT = 'c',
	FSVC_BATCH = 'b',
	FSVC_SLOT = 's',
	FSVC_FREE = 'f',
};

/* The data carried by one frame. Under glibc's 128 KiB mmap threshold
 * (agent/malloc-tuning.c) with the message around it, so that every
 * buffer on the way is recycled from the heap, not mapped and unmapped;
 * as large as that allows: one frame per 126 KiB data message of maitctl
 * cp (docs/files.md: an upload a quarter faster than with two). */
#define FSVC_CHUNK (126 * 1024)
/* What a Read's worker without a ring (ring.h) reads and sends per
 * frame: half a frame. A download was no faster with whole frames
 * through the socket, and 16 at once held 2.5 MiB more in maitred (its
 * receive buffers and queued messages). Through the ring, a slot holds
 * a whole FSVC_CHUNK. */
#define FSVC_READ_CHUNK (63 * 1024)
/* The largest packet either side sends or reads. */
#define FSVC_FRAME_MAX (FSVC_CHUNK + 1024)
/* An ENTRY or MSG that is not data (FileInfo, TreeEntry): its paths are
 * at most 4 KiB each, so it always fits. */

/* A DONE frame's payload; an ERROR frame's, followed by the message (not
 * NUL-ended). */
struct fsvc_end_head {
	uint8_t reusable;
	uint32_t code; /* ERROR only */
} __attribute__((packed));

/* The socketpair, both ends close-on-exec, each with a send buffer of a
 * few frames. */
int fsvc_socketpair(int fds[2]);

/* Blocking (the worker's side) or not (maitred's): one packet of kind
 * and the two pieces, each may be empty. -errno (-EAGAIN when the
 * socket is full and non-blocking). */
int fsvc_send(int fd, enum fsvc_frame_kind kind, const void *a, size_t alen, const void *b, size_t blen);
/* An encoded message as one frame; -E2BIG above FSVC_FRAME_MAX. With a
 * head (REPLY's), the head comes first. */
int fsvc_send_message(int fd, enum fsvc_frame_kind kind, const ProtobufCMessage *m);
int fsvc_send_headed_message(int fd, enum fsvc_frame_kind kind, const void *head, size_t head_len,
			     const ProtobufCMessage *m);

/* A frame inside a BATCH: its kind byte and length before its payload. */
#define FSVC_SUB_HEAD 5
/* Appends a frame of kind and the two pieces (each may be empty) to a
 * batch's payload at buf + *len, and adds its size to *len. The caller
 * made room: FSVC_SUB_HEAD + alen + blen bytes. */
void fsvc_batch_put(uint8_t *buf, size_t *len, enum fsvc_frame_kind kind, const void *a, size_t alen, const void *b,
		    size_t blen);
/* The same for a payload of n bytes the caller writes at the pointer
 * returned (an encoded message packed in place). */
uint8_t *fsvc_batch_add(uint8_t *buf, size_t *len, enum fsvc_frame_kind kind, size_t n);
/* The frame of a batch's payload (p, len) at *off: 1 with its kind,
 * payload and length, *off moved past it; 0 at the end; -EBADMSG when
 * the payload is cut short. */
int fsvc_batch_next(const uint8_t *p, size_t len, size_t *off, uint8_t *ret_kind, const uint8_t **ret_data,
		    size_t *ret_len);
/* How many bytes of whole frames from p (len bytes of a batch's
 * payload) fit in max: what one packet carries. At least the first
 * frame's size, even above max (never the case for frames of at most
 * FSVC_CHUNK - FSVC_SUB_HEAD bytes). */
size_t fsvc_batch_span(const uint8_t *p, size_t len, size_t max);

/* The head of a `bytes` field (its tag and length) as protobuf encodes
 * it: a data message is this head and the data, sent from the worker's
 * buffer without packing a copy. Returns the head's size. */
#define FSVC_FIELD_HEAD_MAX 11
size_t fsvc_bytes_field_head(uint8_t out[FSVC_FIELD_HEAD_MAX], unsigned field, size_t len);
