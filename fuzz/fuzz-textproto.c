/* The boot-job text format (files in /etc/maitred): a LaunchProcessRequest in
 * protobuf text format. Whoever can write a job file controls this input;
 * the parser must refuse anything malformed with a message and never read
 * past the text.
 *
 * A parsed request must also survive what maitred does with it next:
 * packing and unpacking (the same message a LaunchProcess call carries). */
#include <string.h>

#include "fuzz.h"
#include "init/textproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	VmTools__LaunchProcessRequest *req = NULL;
	struct textproto_error err;
	/* An exact-size copy: a read past the end is an ASan report. */
	char *text = malloc(size ? size : 1);

	FUZZ_CHECK(text);
	memcpy(text, data, size);
	memset(&err, 'x', sizeof(err));
	int r = textproto_parse_launch(text, size, &req, &err);
	if (r < 0) {
		FUZZ_CHECK(memchr(err.message, 0, sizeof(err.message)));
		FUZZ_CHECK(err.line >= 1 && err.message[0]);
	} else {
		FUZZ_CHECK(req);
		for (size_t i = 0; i < req->n_argv; i++)
			FUZZ_CHECK(req->argv[i]);
		for (size_t i = 0; i < req->n_env; i++)
			FUZZ_CHECK(req->env[i] && req->env[i]->key && req->env[i]->value);
		size_t len = vm_tools__launch_process_request__get_packed_size(req);
		uint8_t *packed = malloc(len ? len : 1);
		FUZZ_CHECK(packed);
		FUZZ_CHECK(vm_tools__launch_process_request__pack(req, packed) == len);
		VmTools__LaunchProcessRequest *again = vm_tools__launch_process_request__unpack(NULL, len, packed);
		FUZZ_CHECK(again);
		FUZZ_CHECK(again->n_argv == req->n_argv && again->n_env == req->n_env);
		FUZZ_CHECK(again->respawn == req->respawn && again->wait_for_exit == req->wait_for_exit);
		vm_tools__launch_process_request__free_unpacked(again, NULL);
		free(packed);
		vm_tools__launch_process_request__free_unpacked(req, NULL);
	}
	free(text);
	return 0;
}
