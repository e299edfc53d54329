/* A StartRequest's checks, before anything is resolved or started: pure
 * (no I/O, no allocation), fuzzed (fuzz/fuzz-process-request.c). */
#pragma once

#include <stddef.h>

#include "process.pb-c.h"

#define PROCESS_DEFAULT_BUFFER (1024 * 1024)
#define PROCESS_DEFAULT_ROWS 24
#define PROCESS_DEFAULT_COLS 80

/* 0 when req may be started, else a gRPC status code (INVALID_ARGUMENT,
 * RESOURCE_EXHAUSTED for a buffer_bytes above buffer_max) with a message
 * naming the field in err. *ret_buffer is the buffer size to use. */
int process_check_start(const Valet__V1__StartRequest *req, size_t buffer_max, size_t *ret_buffer, char *err,
			size_t err_size);
