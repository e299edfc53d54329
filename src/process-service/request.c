#include "request.h"

#include <stdio.h>
#include <string.h>

#include "rpc/status.h"
#include "service.h"

static int bad(char *err, size_t err_size, int code, const char *what)
{
	snprintf(err, err_size, "%s", what);
	return code;
}

int process_check_start(const Valet__V1__StartRequest *req, size_t buffer_max, size_t *ret_buffer, char *err,
			size_t err_size)
{
	if (req->n_argv == 0)
		return bad(err, err_size, RPC_INVALID_ARGUMENT, "argv: empty (at least the program is needed)");
	if (!req->argv[0] || !req->argv[0][0])
		return bad(err, err_size, RPC_INVALID_ARGUMENT, "argv[0]: empty program name");
	if (req->cwd && req->cwd[0] && req->cwd[0] != '/') {
		snprintf(err, err_size, "cwd: not an absolute path: %.200s", req->cwd);
		return RPC_INVALID_ARGUMENT;
	}
	for (size_t i = 0; i < req->n_env; i++) {
		const char *k = req->env[i]->key;
		if (!k || !*k)
			return bad(err, err_size, RPC_INVALID_ARGUMENT, "env: empty variable name");
		if (strchr(k, '=')) {
			snprintf(err, err_size, "env: variable name with '=': %.200s", k);
			return RPC_INVALID_ARGUMENT;
		}
	}
	if (req->tag && strlen(req->tag) > PROCESS_TAG_MAX) {
		snprintf(err, err_size, "tag: longer than %d bytes", PROCESS_TAG_MAX);
		return RPC_INVALID_ARGUMENT;
	}
	if (req->rows > 65535 || req->cols > 65535)
		return bad(err, err_size, RPC_INVALID_ARGUMENT, "rows, cols: at most 65535");
	if (req->buffer_bytes > buffer_max) {
		snprintf(err, err_size, "buffer_bytes: %u is above this guest's limit of %zu", req->buffer_bytes,
			 buffer_max);
		return RPC_RESOURCE_EXHAUSTED;
	}
	if (req->buffer_bytes)
		*ret_buffer = req->buffer_bytes;
	else
		*ret_buffer = PROCESS_DEFAULT_BUFFER < buffer_max ? PROCESS_DEFAULT_BUFFER : buffer_max;
	return 0;
}
