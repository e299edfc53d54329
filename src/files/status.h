/* Errors of the files layer: -errno plus a message naming the path or
 * entry, and the valet.v1 errno → gRPC status table (shared/spec
 * valet-v1.md, "Conventions").
 *
 * The codes are gRPC's numbers, defined here as plain ints: files does
 * not use the rpc layer (a worker process runs it), and the numbers are
 * fixed by the gRPC protocol, so the RPC handlers pass them on as they
 * are (rpc/status.h has the same values). */
#pragma once

#include <stddef.h>

enum {
	FILES_GRPC_OK = 0,
	FILES_GRPC_INVALID_ARGUMENT = 3,
	FILES_GRPC_NOT_FOUND = 5,
	FILES_GRPC_ALREADY_EXISTS = 6,
	FILES_GRPC_PERMISSION_DENIED = 7,
	FILES_GRPC_RESOURCE_EXHAUSTED = 8,
	FILES_GRPC_FAILED_PRECONDITION = 9,
	FILES_GRPC_INTERNAL = 13,
	FILES_GRPC_DATA_LOSS = 15,
};

/* The layer's own meaning of two errnos: -EINVAL is a bad or missing
 * argument (INVALID_ARGUMENT), -EBADMSG a SHA-256 that differs from the
 * expected one (DATA_LOSS). */
#define FILES_EDIGEST EBADMSG

/* The gRPC code of -errno r (or of errno r): the spec's table, EINVAL
 * and FILES_EDIGEST as above, anything else INTERNAL; 0 for r == 0. */
int files_grpc_code(int r);

struct files_err {
	char msg[512];
};

/* Writes the message (when err is not NULL) and returns r, which is
 * negative: `return files_fail(err, -EINVAL, "entry %s: ...", p);`. */
int files_fail(struct files_err *err, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "PATH: strerror" unless a message is already there. */
int files_fail_path(struct files_err *err, int r, const char *path);
