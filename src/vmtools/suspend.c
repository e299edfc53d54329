/* PrepareToSuspend: the host is about to freeze the VM (or snapshot it).
 * What a guest can do for that is get file data onto the disks: sync(2),
 * which may take long on a busy guest, so it runs in a worker child and the
 * answer comes when it is done. Nothing else is stopped: after resume the
 * host calls SetTime, which fixes the one thing a freeze breaks for sure. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/time-util.h"
#include "common.pb-c.h"
#include "vmtools.h"
#include "agent/worker.h"

struct suspend_call {
	struct rpc_call *call;
	struct worker *worker;
	uint64_t started;
};

static int do_sync(void *arg)
{
	sync();
	return 0;
}

static void on_synced(int result, void *userdata)
{
	struct suspend_call *s = userdata;
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;

	if (result < 0) {
		log_info("PrepareToSuspend from %s: sync failed: %s", rpc_call_peer(s->call), strerror(-result));
		rpc_call_fail(s->call, RPC_INTERNAL, "sync failed: %s", strerror(-result));
	} else {
		log_info("PrepareToSuspend from %s: file systems synced in %.3f s", rpc_call_peer(s->call),
			 (double)(now_usec() - s->started) / 1e6);
		rpc_call_reply(s->call, &resp.base);
	}
	/* Answered: no cancel will come; the watch is already gone. */
	worker_free(s->worker);
	free(s);
}

static void on_cancel(struct rpc_call *call, void *userdata)
{
	struct suspend_call *s = userdata;

	/* The sync goes on; its end is reaped as an orphan. */
	worker_free(s->worker);
	free(s);
}

void maitred_prepare_to_suspend(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	struct maitred *m = userdata;
	struct suspend_call *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
	s->call = call;
	s->started = now_usec();
	r = worker_start(m->loop, do_sync, NULL, -1, on_synced, s, &s->worker);
	if (r < 0) {
		free(s);
		log_info("PrepareToSuspend from %s: could not start sync: %s", rpc_call_peer(call), strerror(-r));
		return rpc_call_fail(call, RPC_INTERNAL, "could not start sync: %s", strerror(-r));
	}
	/* s is freed by whichever comes first: the answer or the cancel. */
	rpc_call_set_cancel(call, on_cancel, s);
}
