/* gRPC message compression, receiving side, without any I/O: which
 * grpc-encoding values are accepted, and inflating one message under a
 * hard cap on its decompressed size. */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum rpc_encoding {
	RPC_ENCODING_IDENTITY,
	RPC_ENCODING_DEFLATE, /* zlib format (RFC 1950), as gRPC means it */
	RPC_ENCODING_GZIP,
};

/* What every response advertises in grpc-accept-encoding. */
#define RPC_ACCEPT_ENCODING "identity,deflate,gzip"

/* A grpc-encoding value; -EOPNOTSUPP for one not in RPC_ACCEPT_ENCODING. */
int rpc_encoding_parse(const char *s, size_t len, enum rpc_encoding *ret);

/* Inflates one whole message into a malloc'd buffer. The cap is checked
 * while inflating, so a bomb costs at most limit bytes of output: -E2BIG as
 * soon as the output would pass limit; -EBADMSG for corrupt or truncated
 * data, or data after the end of the compressed stream; -ENOMEM. */
int rpc_inflate(enum rpc_encoding enc, const uint8_t *in, size_t len, size_t limit, uint8_t **ret, size_t *ret_len);
