/* kernel-version and space: what the guest runs and how much room its main
 * writable filesystem has. */
#include <stdio.h>

#include "common.pb-c.h"
#include "guest.pb-c.h"
#include "maitctl.h"
#include "rpc/status.h"

static int kernel_version(struct maitctl *ctl, int argc, char **argv)
{
	VmTools__EmptyMessage req = VM_TOOLS__EMPTY_MESSAGE__INIT;
	VmTools__GetKernelVersionResponse *resp = NULL;
	int r = maitctl_no_args(argc, argv,
				"Usage: maitctl kernel-version\n\n"
				"Prints the guest kernel's release and version (GetKernelVersion, uname -r and -v).\n");

	if (r >= 0)
		return r;
	if (maitctl_call(ctl, "/vm_tools.Maitred/GetKernelVersion", &req.base,
			 &vm_tools__get_kernel_version_response__descriptor, (ProtobufCMessage **)&resp) != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	if (ctl->json) {
		printf("{\"kernel_release\":");
		maitctl_json_string(resp->kernel_release);
		printf(",\"kernel_version\":");
		maitctl_json_string(resp->kernel_version);
		puts("}");
	} else
		printf("%s %s\n", resp->kernel_release, resp->kernel_version);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static int space(struct maitctl *ctl, int argc, char **argv)
{
	VmTools__EmptyMessage req = VM_TOOLS__EMPTY_MESSAGE__INIT;
	VmTools__GetAvailableSpaceResponse *resp = NULL;
	int r = maitctl_no_args(argc, argv,
				"Usage: maitctl space\n\n"
				"Prints the bytes available on the guest's main writable filesystem\n"
				"(GetAvailableSpace).\n");

	if (r >= 0)
		return r;
	if (maitctl_call(ctl, "/vm_tools.Maitred/GetAvailableSpace", &req.base,
			 &vm_tools__get_available_space_response__descriptor, (ProtobufCMessage **)&resp) != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	if (ctl->json)
		printf("{\"available_space\":%llu}\n", (unsigned long long)resp->available_space);
	else
		printf("%llu\n", (unsigned long long)resp->available_space);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

const struct maitctl_command maitctl_cmd_kernel_version = { "kernel-version", "print the guest kernel's version",
							    kernel_version };
const struct maitctl_command maitctl_cmd_space = { "space", "print the free bytes of the main filesystem", space };
