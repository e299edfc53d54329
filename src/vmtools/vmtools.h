/* vm_tools.Maitred, the host's service: its handlers by family, one method
 * table per family, each family's state the userdata of its table, so that
 * a handler sees only what it uses (and the agent core, agent/maitred.h).
 * vmtools.c holds the tables and registers them with the agent. */
#pragma once

#include <stdbool.h>

#include "agent/maitred.h"
#include "guest.pb-c.h"
#include "rpc/server-session.h"

struct agent;

/* ConfigureNetwork, OnHostNetworkChanged (ResetIPv6), SetResolvConfig. */
struct vmtools_net {
	/* opts: the interface, the resolv.conf path; net: what the last
	 * ConfigureNetwork (or Restored) set, which agent/network.c writes. */
	struct maitred *core;
};

/* LaunchProcess. */
struct vmtools_launch {
	const struct maitred *core; /* the supervisor, the lifecycle's state */
	/* Calls waiting for their process (launch-process.c). */
	struct launch_wait *waits;
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

/* The main filesystem: GetAvailableSpace, ResizeFilesystem,
 * GetResizeStatus, GetResizeBounds. */
struct vmtools_fs {
	const struct maitred *core; /* the loop (the resize worker), opts.main_fs */
	struct maitred_resize resize;
	char main_fs_buf[256];
};

/* PrepareToSuspend's syncs (suspend.c): at most one worker; the calls it
 * answers (arrived before it started) and those waiting for the next. */
struct maitred_suspend {
	struct worker *worker;
	struct suspend_call *running, *queued;
	uint64_t started;
	uint64_t n_syncs;
};

/* Storage: Mount (its mkfs runs) and PrepareToSuspend (its syncs). */
struct vmtools_storage {
	const struct maitred *core; /* the loop (workers, mkfs's exit) */
	struct maitred_suspend suspend;
	struct mkfs_job *mkfs_jobs; /* Mount's mkfs runs, until mkfs exits */
};

enum { VMTOOLS_TABLES = 6 };

struct vmtools {
	struct vmtools_net net;
	struct vmtools_launch launch;
	struct vmtools_fs fs;
	struct vmtools_storage storage;
	struct rpc_service tables[VMTOOLS_TABLES];
};

/* Registers the method tables of vm_tools.Maitred with the agent; Shutdown
 * goes to the agent's lifecycle (agent.h). */
int vmtools_register(struct agent *a, struct vmtools *v);
/* What is still held once the loop has ended (before the supervisor,
 * which holds the waits' exit watches, is freed). */
void vmtools_free(struct vmtools *v);

void maitred_configure_network(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_launch_process(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void maitred_mount(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
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

/* The main writable filesystem's mount point: --main-fs, maitred.main_fs=
 * on the kernel command line, or /. */
const char *maitred_main_fs(struct vmtools_fs *fs);
/* Mount's fields 6-8. Before the mount: create the target. After a failed
 * mount: formats when allowed and safe, then mounts again, answering call
 * itself (returns 1 then). */
int maitred_mount_prepare_target(const VmTools__MountRequest *req);
int maitred_mount_chmod(const VmTools__MountRequest *req);
int maitred_mount_mkfs_and_retry(struct vmtools_storage *st, struct rpc_call *call, const VmTools__MountRequest *req,
				 int mount_error, int held_lock);
/* Locks a block-device source before the mount is tried (flock shared,
 * never waiting): a descriptor holding the lock, -EWOULDBLOCK while another
 * holds it exclusively (a format in progress), another -errno when there is
 * nothing to lock (not a block device). */
int maitred_mount_lock(const VmTools__MountRequest *req);
/* At the end: forgets the mkfs runs and syncs still going (the loop reaps
 * them as orphans) and the calls waiting for them. */
void maitred_mkfs_jobs_free(struct vmtools_storage *st);
void maitred_suspend_free(struct vmtools_storage *st);
/* The waits of processes still running when maitred ends. */
void maitred_launch_waits_free(struct vmtools_launch *l);
