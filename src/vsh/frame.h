/* vsh framing, without I/O: a 4-byte little-endian length, then a protobuf
 * message of at most 4096 bytes. Larger frames are refused both ways. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "vsh.pb-c.h"

#define VSH_MAX_MESSAGE 4096
/* Largest data chunk put in one DataMessage (what the original reads). */
#define VSH_MAX_DATA 4000
#define VSH_FRAME_MAX (4 + VSH_MAX_MESSAGE)

/* Writes one frame into out (VSH_FRAME_MAX bytes is always enough).
 * Returns its length, or -EMSGSIZE when the message is over 4096 bytes. */
int vsh_frame_encode(const ProtobufCMessage *m, uint8_t *out, size_t size);

/* Appends one frame to out. -EMSGSIZE as above, -ENOMEM. */
int vsh_frame_append(struct buf *out, const ProtobufCMessage *m);

/* Who sends a DataMessage: vshd's sessions wrap it in a HostMessage, the
 * client in a GuestMessage. */
enum vsh_sender { VSH_FROM_SERVER, VSH_FROM_CLIENT };

/* Appends data for stream as DataMessage frames of at most VSH_MAX_DATA
 * bytes each; len 0 appends one empty DataMessage (the stream's EOF).
 * -ENOMEM (what was appended before stays). */
int vsh_frame_append_data(struct buf *out, enum vsh_sender from, VmTools__Vsh__StdioStream stream,
			  const uint8_t *data, size_t len);

/* Looks for one whole frame at the start of data. Returns 1 with the
 * message and the frame's total length, 0 when more bytes are needed,
 * -EMSGSIZE when the length prefix is over 4096 (the stream is unusable). */
int vsh_frame_next(const uint8_t *data, size_t len, const uint8_t **ret_msg, size_t *ret_msg_len,
		   size_t *ret_frame_len);

/* Called with each whole frame's message; 0 to go on, anything else to
 * stop there. */
typedef int (*vsh_frame_fn)(const uint8_t *msg, size_t len, void *userdata);

/* Reassembly: calls fn for every whole frame at the start of in, in order,
 * and consumes them from in (the one fn stopped at too). Returns 0 when
 * every whole frame was taken (a partial one stays in in), fn's value when
 * it stopped, -EMSGSIZE when a length prefix is over VSH_MAX_MESSAGE (the
 * stream is unusable). */
int vsh_frame_take(struct buf *in, vsh_frame_fn fn, void *userdata);
