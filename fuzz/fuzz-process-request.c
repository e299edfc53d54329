/* valet.v1.Process' StartRequest as a peer sends it, through what the
 * service checks before anything is resolved or started
 * (process-service/request.c): an accepted request has a program name, an
 * absolute cwd or none, environment names that are not empty and have no
 * '=', a tag of at most PROCESS_TAG_MAX bytes, a window of at most 65535 x
 * 65535, and a buffer within the limit (the default when 0).
 *
 * Input: the first 4 bytes are the limit on buffer_bytes (little endian,
 * at least 1), the rest a StartRequest in protobuf. */
#include <string.h>

#include "fuzz.h"
#include "process-service/request.h"
#include "process-service/service.h"
#include "rpc/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Valet__V1__StartRequest *req;
	char err[512] = "";
	size_t buffer = 0, max;

	if (size < 4)
		return 0;
	max = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24;
	if (max == 0)
		max = 1;
	req = valet__v1__start_request__unpack(NULL, size - 4, data + 4);
	if (!req)
		return 0;
	int code = process_check_start(req, max, &buffer, err, sizeof(err));
	if (code) {
		FUZZ_CHECK((code == RPC_INVALID_ARGUMENT || code == RPC_RESOURCE_EXHAUSTED) && err[0]);
		FUZZ_CHECK(code != RPC_RESOURCE_EXHAUSTED || req->buffer_bytes > max);
	} else {
		FUZZ_CHECK(req->n_argv > 0 && req->argv[0][0]);
		FUZZ_CHECK(!req->cwd[0] || req->cwd[0] == '/');
		for (size_t i = 0; i < req->n_env; i++)
			FUZZ_CHECK(req->env[i]->key[0] && !strchr(req->env[i]->key, '='));
		FUZZ_CHECK(strlen(req->tag) <= PROCESS_TAG_MAX);
		FUZZ_CHECK(req->rows <= 65535 && req->cols <= 65535);
		FUZZ_CHECK(buffer >= 1 && buffer <= max);
		FUZZ_CHECK(req->buffer_bytes ? buffer == req->buffer_bytes : buffer == (max < (1u << 20) ? max : 1u << 20));
	}
	valet__v1__start_request__free_unpacked(req, NULL);
	return 0;
}
