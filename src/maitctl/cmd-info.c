/* kernel-version and space: what the guest runs and how much room its main
 * writable filesystem has. */
#include <stdio.h>

#include "guest.pb-c.h"
#include "maitctl.h"

static void print_kernel_version(const struct maitctl *ctl, const ProtobufCMessage *m)
{
	const VmTools__GetKernelVersionResponse *resp = (const VmTools__GetKernelVersionResponse *)m;

	if (ctl->json) {
		printf("{\"kernel_release\":");
		maitctl_json_string(resp->kernel_release);
		printf(",\"kernel_version\":");
		maitctl_json_string(resp->kernel_version);
		puts("}");
	} else
		printf("%s %s\n", resp->kernel_release, resp->kernel_version);
}

static const struct maitctl_query kernel_version_query = {
	.help = "Usage: maitctl kernel-version\n\n"
		"Prints the guest kernel's release and version (GetKernelVersion, uname -r and -v).\n",
	.method = "/vm_tools.Maitred/GetKernelVersion",
	.response_type = &vm_tools__get_kernel_version_response__descriptor,
	.print = print_kernel_version,
};

static void print_space(const struct maitctl *ctl, const ProtobufCMessage *m)
{
	const VmTools__GetAvailableSpaceResponse *resp = (const VmTools__GetAvailableSpaceResponse *)m;

	if (ctl->json)
		printf("{\"available_space\":%llu}\n", (unsigned long long)resp->available_space);
	else
		printf("%llu\n", (unsigned long long)resp->available_space);
}

static const struct maitctl_query space_query = {
	.help = "Usage: maitctl space\n\n"
		"Prints the bytes available on the guest's main writable filesystem\n"
		"(GetAvailableSpace).\n",
	.method = "/vm_tools.Maitred/GetAvailableSpace",
	.response_type = &vm_tools__get_available_space_response__descriptor,
	.print = print_space,
};

const struct maitctl_command maitctl_cmd_kernel_version = { .name = "kernel-version",
							    .summary = "print the guest kernel's version",
							    .query = &kernel_version_query };
const struct maitctl_command maitctl_cmd_space = { .name = "space",
						   .summary = "print the free bytes of the main filesystem",
						   .query = &space_query };
