/* gRPC-over-HTTP/2 encodings that do not depend on HTTP/2 itself:
 * the 5-byte message prefix, grpc-message percent-encoding, grpc-timeout. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RPC_PREFIX_SIZE 5
/* Largest message either side accepts (gRPC's default). */
#define RPC_MAX_MESSAGE_SIZE (4u * 1024 * 1024)
/* A streaming call's send queue (encoded bytes not yet handed to HTTP/2),
 * both sides: above the high-water mark, send says "stop producing"; the
 * writable callback runs once it is below the low-water mark. */
#define RPC_SEND_HIGH_WATER (1024 * 1024)
#define RPC_SEND_LOW_WATER (256 * 1024)

/* Writes a message's len bytes (encoded, no prefix) at buf, in place in
 * a send queue: 0, or -errno. */
typedef int (*rpc_fill_fn)(uint8_t *buf, size_t len, void *arg);

void rpc_prefix_encode(uint8_t out[RPC_PREFIX_SIZE], bool compressed, uint32_t length);
void rpc_prefix_decode(const uint8_t in[RPC_PREFIX_SIZE], bool *ret_compressed, uint32_t *ret_length);

/* Percent-encodes per the gRPC spec (bytes outside 0x20-0x7E and '%').
 * Returns a malloc'd string or NULL on allocation failure. */
char *rpc_percent_encode(const char *s);
/* Decodes; malformed escapes are kept literally, as the spec asks. */
char *rpc_percent_decode(const char *s, size_t len);

/* Parses a grpc-timeout value ("100m", "5S", ...) into microseconds.
 * -EINVAL when malformed. */
int rpc_timeout_parse(const char *s, size_t len, uint64_t *ret_usec);
/* Formats microseconds as a grpc-timeout value (at most 8 digits). */
void rpc_timeout_format(uint64_t usec, char out[16]);
