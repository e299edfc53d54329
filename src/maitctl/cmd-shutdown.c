#include <getopt.h>
#include <stdio.h>

#include "common.pb-c.h"
#include "maitctl.h"
#include "rpc/status.h"

static int run(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, {} };
	VmTools__EmptyMessage req = VM_TOOLS__EMPTY_MESSAGE__INIT;
	ProtobufCMessage *resp = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0) {
		if (c == 'h') {
			puts("Usage: maitctl shutdown\n\nAsks the guest to shut down (maitred exits when it is not PID "
			     "1).");
			return 0;
		}
		return MAITCTL_EXIT_USAGE;
	}
	if (optind < argc) {
		fprintf(stderr, "maitctl shutdown: unexpected argument '%s'\n", argv[optind]);
		return MAITCTL_EXIT_USAGE;
	}
	if (maitctl_call(ctl, "/vm_tools.Maitred/Shutdown", &req.base, &vm_tools__empty_message__descriptor, &resp) !=
	    RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	protobuf_c_message_free_unpacked(resp, NULL);
	puts(ctl->json ? "{}" : "OK");
	return 0;
}

const struct maitctl_command maitctl_cmd_shutdown = { "shutdown", "shut the guest down", run };
