/* maitctl: the host's command-line client for vm_tools.Maitred. One file
 * per subcommand; this header is what they share. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/macro.h"
#include "guest.pb-c.h"
#include "net/addr.h"

/* Exit codes besides a waited process's own. */
#define MAITCTL_EXIT_RPC_ERROR 1
#define MAITCTL_EXIT_USAGE 2

struct maitctl {
	struct addr addr;
	bool have_addr;
	uint64_t timeout_usec;
	bool timeout_set; /* --timeout given: cp has no deadline otherwise */
	bool json;
};

struct maitctl_query;

/* A subcommand is either a run function or, for the argument-less
 * getters, a query (run is NULL then). */
struct maitctl_command {
	const char *name;
	const char *summary;
	int (*run)(struct maitctl *ctl, int argc, char **argv);
	bool local; /* runs on the host alone: no guest address needed */
	const struct maitctl_query *query;
};

extern const struct maitctl_command maitctl_cmd_network;
extern const struct maitctl_command maitctl_cmd_launch;
extern const struct maitctl_command maitctl_cmd_mount;
extern const struct maitctl_command maitctl_cmd_shutdown;
extern const struct maitctl_command maitctl_cmd_wait_ready;
extern const struct maitctl_command maitctl_cmd_set_time;
extern const struct maitctl_command maitctl_cmd_set_timezone;
extern const struct maitctl_command maitctl_cmd_set_dns;
extern const struct maitctl_command maitctl_cmd_kernel_version;
extern const struct maitctl_command maitctl_cmd_space;
extern const struct maitctl_command maitctl_cmd_resize;
extern const struct maitctl_command maitctl_cmd_resize_status;
extern const struct maitctl_command maitctl_cmd_resize_bounds;
extern const struct maitctl_command maitctl_cmd_suspend_prep;
extern const struct maitctl_command maitctl_cmd_network_changed;
extern const struct maitctl_command maitctl_cmd_cp;
extern const struct maitctl_command maitctl_cmd_stat;
extern const struct maitctl_command maitctl_cmd_ls;
extern const struct maitctl_command maitctl_cmd_mkdir;
extern const struct maitctl_command maitctl_cmd_rm;
extern const struct maitctl_command maitctl_cmd_mv;
extern const struct maitctl_command maitctl_cmd_exec;
extern const struct maitctl_command maitctl_cmd_attach;
extern const struct maitctl_command maitctl_cmd_ps;
extern const struct maitctl_command maitctl_cmd_kill;
extern const struct maitctl_command maitctl_cmd_freeze;
extern const struct maitctl_command maitctl_cmd_thaw;
extern const struct maitctl_command maitctl_cmd_restored;
extern const struct maitctl_command maitctl_cmd_forward;

/* For subcommands without arguments: handles --help (usage text help) and
 * strays. Returns -1 to go on, else the exit code. */
int maitctl_no_args(int argc, char **argv, const char *help);
/* For getopt's 'h' and '?': prints help to stdout (c == 'h') or stderr,
 * returns the exit code (0 or MAITCTL_EXIT_USAGE). */
int maitctl_help(const char *help, int c);
/* After the options: complains about the first argument left over.
 * Returns -1 when there is none, else the exit code. */
int maitctl_no_stray(int argc, char **argv);

/* network's options, which restored takes too: --address A[/PREFIX],
 * --netmask M, --gateway G into cfg. */
#define MAITCTL_NET_OPTIONS                                                                  \
	{ "address", required_argument, NULL, 'a' }, { "netmask", required_argument, NULL, 'n' }, \
		{ "gateway", required_argument, NULL, 'g' }
struct maitctl_net_opts {
	VmTools__IPv4Config cfg;
	bool have_addr, have_mask, have_gw;
};
/* One of those options (getopt's c and its argument): 0; -EINVAL once the
 * bad input is printed (cmd names the subcommand); -ENOENT when c is not
 * one of them. */
int maitctl_net_option(const char *cmd, int c, const char *arg, struct maitctl_net_opts *o);
/* All three given: 0, else -EINVAL once said. */
int maitctl_net_check(const char *cmd, const struct maitctl_net_opts *o);

/* "1700000000" or "1700000000.25": seconds since the epoch (fractions to
 * the nanosecond), up to year 9999; -EINVAL otherwise. */
int maitctl_parse_epoch(const char *s, int64_t *ret_sec, int32_t *ret_nsec);

/* Seconds as a user writes them ("2.5"), 0 to a year; -EINVAL otherwise. */
int maitctl_parse_seconds(const char *s, uint64_t *ret_usec);

/* Makes one call. On RPC_OK stores the decoded response (free it with
 * protobuf_c_message_free_unpacked); otherwise prints the status (text or
 * JSON) and returns the gRPC code. Connection failures print and return
 * RPC_UNAVAILABLE. */
int maitctl_call(struct maitctl *ctl, const char *method, const ProtobufCMessage *request,
		 const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret_response);

/* maitctl_call() that prints nothing: the message of a failure goes to
 * ret_message (cp's Stat of a destination that may not exist). */
int maitctl_call_status(struct maitctl *ctl, const char *method, const ProtobufCMessage *request,
			const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret_response,
			char *ret_message, size_t size);

/* Prints a failure as every command does: "maitctl: CODE: message" on
 * stderr (control characters escaped), and with --json the same as
 * {"code":..., "message":...} on stdout. */
void maitctl_print_error(const struct maitctl *ctl, int code, const char *message);

/* maitctl_call() of a method whose response is an EmptyMessage: 0, or
 * MAITCTL_EXIT_RPC_ERROR once the status is printed. */
int maitctl_call_empty(struct maitctl *ctl, const char *method, const ProtobufCMessage *request);
/* The same, printing "OK" (or "{}" with --json) on success. */
int maitctl_call_ok(struct maitctl *ctl, const char *method, const ProtobufCMessage *request);

/* A subcommand without arguments that sends an EmptyMessage and prints
 * the answer (kernel-version, space, resize-status, resize-bounds): it
 * accepts --help only. */
struct maitctl_query {
	const char *help;
	const char *method;
	const ProtobufCMessageDescriptor *response_type;
	void (*print)(const struct maitctl *ctl, const ProtobufCMessage *response);
};
int maitctl_run_query(struct maitctl *ctl, int argc, char **argv, const struct maitctl_query *q);

/* For _cleanup_: frees a decoded response (any message type). */
static inline void maitctl_response_freep(void *p)
{
	ProtobufCMessage **m = p;
	if (*m)
		protobuf_c_message_free_unpacked(*m, NULL);
}
#define _cleanup_response_ _cleanup_(maitctl_response_freep)

/* Prints a JSON string literal with escapes. */
void maitctl_json_string(const char *s);
