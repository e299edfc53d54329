/* protobuf-c hands string fields over as C strings: a NUL inside one
 * silently cuts it ("sh\0evil" becomes "sh"). This walks an encoded
 * message and reports the first string field whose bytes contain a NUL,
 * so the request can be refused instead of half-run. Sans-I/O. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* Returns 1 and the field's name (nested fields as "env.key") when a
 * string field of the message described by desc contains a NUL, 0 when
 * none does, -EBADMSG when data is not a well-formed encoding. */
int vsh_find_nul_string(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len, char *ret_field,
			size_t field_size);
