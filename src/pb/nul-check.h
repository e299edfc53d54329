/* protobuf-c hands `string` fields over as C strings, cut at the first NUL
 * byte: "sh\0evil" arrives as "sh". This finds such strings in the encoded
 * message, where their real length still is, so that a request can be
 * refused instead of acted on in part. Used by the gRPC server core and by
 * the vsh session (for its SetupConnectionRequest). */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* Looks through every string field of the message in data (nested messages
 * and map entries included). Returns 1 and the field's name ("argv",
 * "env.value") in ret_field when one contains a NUL byte, 0 when none
 * does, -EBADMSG when the encoding is broken. */
int pb_find_nul_string(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len, char *ret_field,
		       size_t size);
