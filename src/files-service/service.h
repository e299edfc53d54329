/* valet.v1.Files in maitred (shared/spec valet-v1.md; docs/files.md).
 *
 * Every call runs its file I/O in a worker process of its own (a fork of
 * maitred: work.h), never in maitred's loop, so that a slow or stuck disk
 * delays that call only. maitred relays: request data to the worker,
 * responses to the client, with back-pressure both ways (frame.h). At
 * most FSVC_MAX_WORKERS workers are busy at once (a cancelled call's
 * worker stuck on its disk still counts); later calls wait for one, in
 * order. Finished workers wait a while for the next call (pool.h).
 * One exception: a Stat with no user that the kernel's caches can answer
 * is answered in maitred's loop, without ever waiting (stat-here.h). */
#pragma once

#include "agent/agent.h"

#define FSVC_MAX_WORKERS 64

struct fsvc_job;
struct fsvc_proc;

struct files_service {
	struct maitred *core;
	struct rpc_service table;
	/* The workers (pool.c): all of them; the idle ones; how many are
	 * not idle (serving, or on their way out after a call). */
	struct fsvc_proc *procs, *idle;
	unsigned n_idle, busy;
	struct loop_timer *idle_timer;
	/* A busy worker became idle or exited (the jobs' queue moves on). */
	void (*worker_free)(struct files_service *s);
	struct fsvc_job *queue, *queue_last; /* waiting for a worker */
	struct fsvc_job *jobs;		 /* every call in progress */
};

int files_service_register(struct agent *a, struct files_service *s);
/* Once the loop has ended: frees the jobs left (their workers die with
 * maitred: PR_SET_PDEATHSIG). */
void files_service_free(struct files_service *s);
