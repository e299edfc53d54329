/* suspend-prep and network-changed: telling the guest what the host is about
 * to do or just did. */
#include <getopt.h>
#include <stdio.h>

#include "common.pb-c.h"
#include "maitctl.h"

static int empty_call(struct maitctl *ctl, const char *method)
{
	VmTools__EmptyMessage req = VM_TOOLS__EMPTY_MESSAGE__INIT;

	return maitctl_call_ok(ctl, method, &req.base);
}

static int suspend_prep(struct maitctl *ctl, int argc, char **argv)
{
	int r = maitctl_no_args(argc, argv,
				"Usage: maitctl suspend-prep\n\n"
				"Tells the guest the VM is about to be suspended (PrepareToSuspend): it\n"
				"answers once file system data is on disk.\n");

	return r >= 0 ? r : empty_call(ctl, "/vm_tools.Maitred/PrepareToSuspend");
}

static int network_changed(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "reset-ipv6", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *method = "/vm_tools.Maitred/OnHostNetworkChanged";
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
		if (c == 'r') {
			method = "/vm_tools.Maitred/ResetIPv6";
			continue;
		}
		return maitctl_help("Usage: maitctl network-changed [--reset-ipv6]\n"
				    "\n"
				    "Tells the guest the host's network changed (OnHostNetworkChanged): it\n"
				    "forgets learned neighbours, sets its IPv4 configuration again and restarts\n"
				    "IPv6 autoconfiguration.\n"
				    "  --reset-ipv6   call the deprecated ResetIPv6 instead (same effect)\n",
				    c);
	}
	int r = maitctl_no_stray(argc, argv);
	return r >= 0 ? r : empty_call(ctl, method);
}

const struct maitctl_command maitctl_cmd_suspend_prep = { .name = "suspend-prep",
							  .summary = "prepare the guest for a suspend",
							  .run = suspend_prep };
const struct maitctl_command maitctl_cmd_network_changed = { .name = "network-changed",
							     .summary = "tell the guest the host network changed",
							     .run = network_changed };
