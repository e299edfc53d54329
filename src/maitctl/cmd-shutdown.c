#include <getopt.h>
#include <stdio.h>

#include "common.pb-c.h"
#include "maitctl.h"

static int run(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, {} };
	VmTools__EmptyMessage req = VM_TOOLS__EMPTY_MESSAGE__INIT;
	int c;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0) {
		if (c == 'h') {
			puts("Usage: maitctl shutdown\n\nAsks the guest to shut down (maitred exits when it is not PID "
			     "1).");
			return 0;
		}
		return MAITCTL_EXIT_USAGE;
	}
	int r = maitctl_no_stray(argc, argv);
	if (r >= 0)
		return r;
	return maitctl_call_ok(ctl, "/vm_tools.Maitred/Shutdown", &req.base);
}

const struct maitctl_command maitctl_cmd_shutdown = { .name = "shutdown",
						      .summary = "shut the guest down",
						      .run = run };
