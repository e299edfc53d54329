/* maitctl: the host's command-line client for vm_tools.Maitred. One file
 * per subcommand; this header is what they share. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/macro.h"
#include "net/addr.h"

/* Exit codes besides a waited process's own. */
#define MAITCTL_EXIT_RPC_ERROR 1
#define MAITCTL_EXIT_USAGE 2

struct maitctl {
	struct addr addr;
	bool have_addr;
	uint64_t timeout_usec;
	bool json;
};

struct maitctl_command {
	const char *name;
	const char *summary;
	int (*run)(struct maitctl *ctl, int argc, char **argv);
	bool local; /* runs on the host alone: no guest address needed */
};

extern const struct maitctl_command maitctl_cmd_network;
extern const struct maitctl_command maitctl_cmd_launch;
extern const struct maitctl_command maitctl_cmd_mount;
extern const struct maitctl_command maitctl_cmd_shutdown;
extern const struct maitctl_command maitctl_cmd_wait_ready;

/* Seconds as a user writes them ("2.5"), 0 to a year; -EINVAL otherwise. */
int maitctl_parse_seconds(const char *s, uint64_t *ret_usec);

/* Makes one call. On RPC_OK stores the decoded response (free it with
 * protobuf_c_message_free_unpacked); otherwise prints the status (text or
 * JSON) and returns the gRPC code. Connection failures print and return
 * RPC_UNAVAILABLE. */
int maitctl_call(struct maitctl *ctl, const char *method, const ProtobufCMessage *request,
		 const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret_response);

/* Prints a JSON string literal with escapes. */
void maitctl_json_string(const char *s);
