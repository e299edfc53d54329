/* The agent core: what every service's handlers may share (the loop, the
 * supervisor, the options, the lifecycle's state), and what is shared
 * between the boot jobs and LaunchProcess. The lifecycle's own state is
 * agent.h's; each service keeps its handlers' state in its own structs
 * (the vm_tools.Maitred handlers: vmtools/vmtools.h). */
#pragma once

#include <stdbool.h>

#include "guest.pb-c.h"
#include "init/supervisor.h"
#include "lifecycle.h"
#include "loop/loop.h"
#include "net/sock.h"

#define MAITRED_MAX_LISTEN 8
#define MAITRED_MAX_DISABLE 64
/* valet.v1.Process: processes remembered at most (a List answer holds
 * them all in one message). */
#define MAITRED_MAX_PROCESSES 1024

struct maitred_options {
	const char *listen[MAITRED_MAX_LISTEN];
	unsigned n_listen;
	struct peer_policy policy;
	const char *interface;
	unsigned max_connections;
	uint64_t handshake_timeout_usec;
	const char *jobs_dir;
	bool no_startup_processes;
	/* Where to send VmReady; NULL: nowhere ("none", or not PID 1). */
	const char *vm_ready;
	bool vm_ready_given;
	uint64_t vm_ready_timeout_usec; /* retried with backoff for this long */
	uint64_t shutdown_grace_usec;
	struct supervisor_params respawn; /* --respawn-backoff-max */
	/* The later RPCs (see their files): where they act. */
	const char *resolv_conf;  /* default /etc/resolv.conf */
	const char *localtime;	  /* default /etc/localtime */
	const char *zoneinfo_dir; /* default /usr/share/zoneinfo */
	const char *main_fs;	  /* NULL: maitred.main_fs=, else / */
	/* Freeze's scope (--freeze-below): the filesystems mounted there or
	 * below; "/" (every one) by default. A sandbox without a VM (a
	 * namespace) must not freeze its host's disks. */
	const char *freeze_below;
	/* Method switches (agent.h: maitred_disable()), applied after the
	 * config file's. */
	const char *disable[MAITRED_MAX_DISABLE];
	unsigned n_disable;
	const char *config; /* --config, else NULL: MAITRED_CONFIG_DEFAULT if present */
	/* valet.v1.Process (docs/process.md): processes remembered, the
	 * largest buffer per stream, all buffers together, how long an
	 * exited process nobody has seen end is kept. */
	unsigned max_processes;
	size_t process_buffer_max;
	size_t process_buffer_total;
	uint64_t process_keep_exited_usec;
};

/* What the last successful ConfigureNetwork (or Restored's network) set,
 * for OnHostNetworkChanged (agent/network.c). */
struct maitred_net_state {
	bool configured;
	uint32_t address_be, gateway_be;
	uint8_t prefixlen;
};

/* The status message of every call refused while frozen. */
#define MAITRED_FROZEN_MESSAGE "file systems are frozen"

/* Handed to every service; handlers read it, only main.c sets the
 * options and only the lifecycle (agent/service.c) changes state. */
struct maitred {
	struct loop *loop;
	struct supervisor *supervisor;
	struct maitred_options opts;
	enum maitred_state state; /* lifecycle.h */
	/* valet.v1.Snapshot's Freeze until its thaw is done: calls that would
	 * write to a disk are refused (maitred_refuse_if_frozen()), so that
	 * maitred never blocks on a frozen filesystem. Set only by the
	 * snapshot service; read by the others. */
	bool frozen;
	struct maitred_net_state net; /* set only by agent/network.c */
};

struct rpc_call;
/* While frozen: fails call with FAILED_PRECONDITION "file systems are
 * frozen", logs it, and returns true; else false. */
bool maitred_refuse_if_frozen(const struct maitred *m, struct rpc_call *call);

/* Parses argv into opts; prints help or an error quoting the bad input.
 * Returns 1 when the program should exit 0 (--help), -EINVAL on errors. */
int maitred_parse_options(int argc, char **argv, struct maitred_options *opts);

/* What the supervisor starts for a LaunchProcessRequest: spec.argv points
 * into the request, spec.env is owned. */
struct launch_job {
	struct job_spec spec;
	char **argv;
	char **env;
};
int launch_job_from_request(const VmTools__LaunchProcessRequest *req, struct launch_job *ret);
void launch_job_clear(struct launch_job *j);
