/* valet.v1.Snapshot in maitred (shared/spec valet-v1.md; docs/snapshot.md):
 * Freeze and Thaw (freeze.c), Restored (restored.c).
 *
 * Freeze's sync and each FIFREEZE and FITHAW run in a forked child
 * (agent/worker.h), one after the other, driven by the loop: a disk that
 * takes long to sync or freeze delays the call, never maitred. While a
 * freeze lasts, the core's frozen flag makes the calls that would write
 * to a disk answer FAILED_PRECONDITION. Nothing is allocated before the
 * first call. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/agent.h"
#include "entropy.h"

enum snap_state {
	SNAP_THAWED,
	SNAP_FREEZING, /* the sync, then one FIFREEZE after another */
	SNAP_FROZEN,   /* until Thaw or the automatic thaw */
	SNAP_THAWING,  /* one FITHAW after another */
};

/* One filesystem of a freeze, in the order it is frozen. */
struct snap_fs {
	char *path;
	int fd; /* its mount point, open from the Freeze to the end of the thaw */
	bool frozen;
};

struct snap_thaw_call;

struct snap_freeze {
	enum snap_state state;
	struct snap_fs *fs;
	size_t n_fs;
	/* FREEZING: the filesystem being frozen (n_fs while syncing);
	 * THAWING: the one being thawed. */
	size_t step;
	bool syncing;
	struct worker *worker;
	struct loop_timer *auto_thaw; /* allocated by the first Freeze */
	uint32_t timeout_s;
	uint64_t began_usec;
	struct rpc_call *freeze_call; /* FREEZING: to answer once frozen */
	/* FREEZING: thaw as soon as the step in progress ends (a Thaw came,
	 * the Freeze call went away, or a FIFREEZE failed). */
	bool abort;
	const char *abort_why;
	/* The first failure of the freeze, and of the thaw (-errno), with
	 * the filesystem's path. */
	int error, thaw_error;
	char *error_path, *thaw_error_path;
	struct snap_thaw_call *thaw_calls; /* answered when the thaw ends */
	/* The answer's paths (pointers into fs), allocated with the list so
	 * that answering cannot fail: what was frozen, then what was thawed. */
	char **answer;
	size_t n_answer;
	const char *thaw_why; /* for the log */
	uint64_t n_freezes;
};

struct snapshot_service {
	struct maitred *core; /* the only service that sets core->frozen */
	struct rpc_service table;
	struct snap_freeze fz;
	char *generation; /* Restored's last generation (NULL: none yet) */
	struct snap_entropy_ops entropy; /* the kernel's; tests inject theirs */
	struct maitred_stop_hook stop_hook;
};

int snapshot_service_register(struct agent *a, struct snapshot_service *s);
/* Once the loop has ended: thaws what is still frozen (in maitred: the
 * end must not leave the guest's disks frozen), frees the rest. */
void snapshot_service_free(struct snapshot_service *s);

void snap_freeze(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void snap_thaw(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void snap_restored(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
/* Thaws at once, in maitred (the orderly end): FITHAW does not wait for
 * the disk. The calls waiting are answered (answer) or only forgotten
 * (once the loop is over). */
void snap_thaw_now(struct snapshot_service *s, bool answer);
/* snap_thaw_now(), then frees what Freeze and Thaw hold. */
void snap_freeze_free(struct snapshot_service *s);
