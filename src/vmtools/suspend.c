/* PrepareToSuspend: the host is about to freeze the VM (or snapshot it).
 * What a guest can do for that is get file data onto the disks: sync(2),
 * which may take long on a busy guest, so it runs in a worker child and the
 * answer comes when it is done. Nothing else is stopped: after resume the
 * host calls SetTime, which fixes the one thing a freeze breaks for sure.
 *
 * Concurrent calls share syncs: at most one runs, and the calls that
 * arrive while it runs wait together for the next one, which starts when
 * it ends. A call is answered only by a sync that started after it
 * arrived, so whatever was written before the call is covered; and however
 * many calls come, there is at most one sync child. The worker is this
 * file's, not a call's: a cancelled call just leaves its group, and the
 * child is still reaped here and logged. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/list.h"
#include "base/log.h"
#include "base/time-util.h"
#include "common.pb-c.h"
#include "vmtools.h"
#include "agent/worker.h"

struct suspend_call {
	struct suspend_call *prev, *next;
	struct maitred_suspend *owner;
	struct rpc_call *call;
	bool queued; /* waits for the next sync, not the running one */
	uint64_t arrived;
};

static int do_sync(void *arg)
{
	sync();
	return 0;
}

static void suspend_call_free(struct suspend_call *s)
{
	struct maitred_suspend *sus = s->owner;

	if (s->queued)
		LIST_REMOVE(sus->queued, s);
	else
		LIST_REMOVE(sus->running, s);
	free(s);
}

static void on_synced(int result, void *userdata);

/* Starts a sync for the queued calls; they become the running ones. */
static int sync_start(struct vmtools_storage *m)
{
	struct maitred_suspend *sus = &m->suspend;
	int r = worker_start(m->core->loop, do_sync, NULL, -1, on_synced, m, &sus->worker);
	if (r < 0)
		return r;
	sus->started = now_usec();
	sus->n_syncs++;
	sus->running = TAKE_PTR(sus->queued);
	for (struct suspend_call *s = sus->running; s; s = s->next)
		s->queued = false;
	log_info("PrepareToSuspend: sync %" PRIu64 " started (pid %d)", sus->n_syncs, (int)worker_pid(sus->worker));
	return 0;
}

/* Fails every call of a list (the calls that a sync could not serve). */
static void fail_all(struct suspend_call **list, int error)
{
	while (*list) {
		struct suspend_call *s = *list;
		struct rpc_call *call = s->call;
		log_info("PrepareToSuspend from %s: could not start sync: %s", rpc_call_peer(call), strerror(-error));
		suspend_call_free(s);
		rpc_call_fail(call, RPC_INTERNAL, "could not start sync: %s", strerror(-error));
	}
}

static void on_synced(int result, void *userdata)
{
	struct vmtools_storage *m = userdata;
	struct maitred_suspend *sus = &m->suspend;
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	unsigned answered = 0;
	pid_t pid = worker_pid(sus->worker);

	worker_free(TAKE_PTR(sus->worker));
	while (sus->running) {
		struct suspend_call *s = sus->running;
		struct rpc_call *call = s->call;
		double took = (double)(now_usec() - s->arrived) / 1e6;
		/* Answered: no cancel will come for it. */
		suspend_call_free(s);
		answered++;
		if (result < 0) {
			log_info("PrepareToSuspend from %s: sync failed: %s", rpc_call_peer(call), strerror(-result));
			rpc_call_fail(call, RPC_INTERNAL, "sync failed: %s", strerror(-result));
		} else {
			log_info("PrepareToSuspend from %s: file systems synced in %.3f s", rpc_call_peer(call), took);
			rpc_call_reply(call, &resp.base);
		}
	}
	log_info("PrepareToSuspend: sync %" PRIu64 " (pid %d) done in %.3f s%s; %u calls answered", sus->n_syncs,
		 (int)pid, (double)(now_usec() - sus->started) / 1e6, result < 0 ? ", failed" : "", answered);
	if (sus->queued) {
		int r = sync_start(m);
		if (r < 0)
			fail_all(&sus->queued, r);
	}
}

static void on_cancel(struct rpc_call *call, void *userdata)
{
	/* The sync goes on for the others (or alone); on_synced reaps it. */
	suspend_call_free(userdata);
}

void maitred_prepare_to_suspend(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	struct vmtools_storage *m = userdata;
	struct maitred_suspend *sus = &m->suspend;
	struct suspend_call *s = calloc(1, sizeof(*s));

	if (!s)
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
	*s = (struct suspend_call){ .owner = sus, .call = call, .queued = true, .arrived = now_usec() };
	LIST_PREPEND(sus->queued, s);
	if (!sus->worker) {
		int r = sync_start(m);
		if (r < 0)
			return fail_all(&sus->queued, r);
	}
	/* s is freed by whichever comes first: the answer or the cancel. */
	rpc_call_set_cancel(call, on_cancel, s);
}

void maitred_suspend_free(struct vmtools_storage *m)
{
	struct maitred_suspend *sus = &m->suspend;
	struct suspend_call **lists[] = { &sus->running, &sus->queued };

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++)
		while (*lists[i]) {
			/* Cancelled later, with the server: it must not reach
			 * a call that is gone by then. */
			rpc_call_set_cancel((*lists[i])->call, NULL, NULL);
			suspend_call_free(*lists[i]);
		}
	/* A sync still running is left to finish; the loop reaps it. */
	worker_free(TAKE_PTR(sus->worker));
}
