/* The payload of a message that is one bytes field and nothing else (a
 * file's data: valet.v1 ReadResponse.data, TreeResponse.data), found
 * without decoding it: protobuf-c would allocate and copy every data
 * message, which for a large file is the largest cost after the I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* true, and the bytes inside msg, when msg is exactly field number field
 * (1-15, length-delimited) with its length; false for anything else (the
 * caller decodes the message then). */
bool pb_bytes_field(const uint8_t *msg, size_t len, unsigned field, const uint8_t **ret, size_t *ret_len);
