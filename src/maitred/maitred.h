/* State shared by maitred's RPC handlers. */
#pragma once

#include <stdbool.h>

#include "base/notify.h"
#include "guest.pb-c.h"
#include "init/supervisor.h"
#include "lifecycle.h"
#include "loop/loop.h"
#include "rpc/server.h"

#define MAITRED_MAX_LISTEN 8

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
};

/* ResizeFilesystem's state (resize.c); fd and kind mean something only
 * while worker runs. */
struct maitred_resize {
	struct worker *worker;
	int fd; /* the mount point, for the ioctl */
	int kind;
	uint64_t target; /* bytes; 0 before the first resize */
	uint64_t count;	 /* ext4: blocks */
	uint64_t started;
	char fs[256];
};

/* PrepareToSuspend's syncs (suspend.c): at most one worker; the calls it
 * answers (arrived before it started) and those waiting for the next. */
struct maitred_suspend {
	struct worker *worker;
	struct suspend_call *running, *queued;
	uint64_t started;
	uint64_t n_syncs;
};

/* What the last successful ConfigureNetwork set, for OnHostNetworkChanged. */
struct maitred_net_state {
	bool configured;
	uint32_t address_be, gateway_be;
	uint8_t prefixlen;
};

struct maitred {
	struct loop *loop;
	struct rpc_server *server;
	struct supervisor *supervisor;
	struct maitred_options opts;
	bool pid1;
	/* Not PID 1, but a systemd service: Shutdown powers the system off
	 * through systemd. */
	bool systemd_service;
	struct notify notify;	   /* the service manager, if any */
	struct vm_ready *vm_ready; /* while VmReady is being sent */
	struct launch_wait *launch_waits; /* LaunchProcess calls waiting for their process */
	enum maitred_state state;	      /* lifecycle.h */
	struct boot_jobs *boot_jobs;	      /* while jobs are still being run */
	struct power_off_sequence *power_off; /* PID 1's power-off, once begun */
	char vm_ready_default[32];
	uint64_t started_usec, started_user_usec, started_sys_usec; /* for the "Serving after" log line */
	struct maitred_net_state net;
	struct maitred_resize resize;
	struct maitred_suspend suspend;
	struct mkfs_job *mkfs_jobs; /* Mount's mkfs runs, until mkfs exits */
	char main_fs_buf[256];
};

/* Parses argv into opts; prints help or an error quoting the bad input.
 * Returns 1 when the program should exit 0 (--help), -EINVAL on errors. */
int maitred_parse_options(int argc, char **argv, struct maitred_options *opts);

extern const struct rpc_service maitred_service;

void maitred_configure_network(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_launch_process(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_mount(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_shutdown(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
/* The methods added after 2017, one file per method or small family. */
void maitred_set_time(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_set_timezone(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_set_resolv_config(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_get_kernel_version(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_get_available_space(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_resize_filesystem(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_get_resize_status(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_get_resize_bounds(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_prepare_to_suspend(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_on_host_network_changed(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_refuse_container_method(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);

/* resolv.conf for SetResolvConfig and ConfigureNetwork: check (message in
 * err) and write; *ret_path is where it went. */
int maitred_resolv_check(const VmTools__ResolvConfig *rc, char *err, size_t errlen);
int maitred_resolv_write(struct maitred *m, const VmTools__ResolvConfig *rc, const char **ret_path);
/* The main writable filesystem's mount point: --main-fs, maitred.main_fs=
 * on the kernel command line, or /. */
const char *maitred_main_fs(struct maitred *m);
/* Mount's fields 6-8. Before the mount: create the target. After a failed
 * mount: formats when allowed and safe, then mounts again, answering call
 * itself (returns 1 then). */
int maitred_mount_prepare_target(const VmTools__MountRequest *req);
int maitred_mount_chmod(const VmTools__MountRequest *req);
int maitred_mount_mkfs_and_retry(struct maitred *m, struct rpc_call *call, const VmTools__MountRequest *req,
				 int mount_error);
/* At the end: forgets the mkfs runs and syncs still going (the loop reaps
 * them as orphans) and the calls waiting for them. */
void maitred_mkfs_jobs_free(struct maitred *m);
void maitred_suspend_free(struct maitred *m);
/* What the supervisor starts for a LaunchProcessRequest: spec.argv points
 * into the request, spec.env is owned. */
struct launch_job {
	struct job_spec spec;
	char **argv;
	char **env;
};
int launch_job_from_request(const VmTools__LaunchProcessRequest *req, struct launch_job *ret);
void launch_job_clear(struct launch_job *j);
/* The waits of processes still running when maitred ends. */
void maitred_launch_waits_free(struct maitred *m);

/* Runs the boot jobs in dir, then calls done (maybe at once, maybe from
 * the loop once the last wait_for_exit job has ended). Always calls done:
 * what fails on the way (no memory, a bad file, a job that cannot start) is
 * logged and skipped, so that the agent still serves. */
void maitred_run_boot_jobs(struct maitred *m, const char *dir, void (*done)(struct maitred *m));
/* Drops the jobs not started yet (maitred stopped first). */
void maitred_boot_jobs_free(struct maitred *m);

/* Feeds the lifecycle (lifecycle.h) one input and carries out what it
 * asks. call is the Shutdown call with MAITRED_POWER_OFF (or NULL). The
 * orderly stop when not PID 1 (MAITRED_STOP: Shutdown RPC, SIGTERM) stops
 * accepting, finishes the calls in flight, then leaves the loop. */
void maitred_input(struct maitred *m, enum maitred_input in, struct rpc_call *call);

/* PID 1's power-off sequence (MAITRED_DO_POWER_OFF): stop respawning and
 * serving, SIGTERM everyone, wait up to the grace period, SIGKILL the rest,
 * unmount, answer call (if any), then MAITRED_POWER_OFF_DONE, so that main
 * powers off. */
void maitred_power_off_start(struct maitred *m, struct rpc_call *call);
void maitred_power_off_free(struct maitred *m);

/* Re-executes maitred once with glibc's tcache off (its idle footprint
 * after a burst), leaving the environment as it found it. */
void maitred_tune_malloc(char **argv);

/* Tells the host the VM is ready (VmReady), if a target is set, retrying
 * with backoff until it answers or --vm-ready-timeout has passed. */
void maitred_notify_ready(struct maitred *m);
void maitred_vm_ready_free(struct maitred *m);
