/* valet.v1.Files in maitred (shared/spec valet-v1.md; docs/files.md).
 *
 * Every call runs its file I/O in a worker process of its own (a fork of
 * maitred: work.h), never in maitred's loop, so that a slow or stuck disk
 * delays that call only. maitred relays: request data to the worker,
 * responses to the client, with back-pressure both ways (frame.h). At
 * most FSVC_MAX_WORKERS workers live at once; later calls wait for one
 * to end, in order. */
#pragma once

#include "agent/agent.h"

#define FSVC_MAX_WORKERS 64

struct fsvc_job;

struct files_service {
	struct maitred *core;
	struct rpc_service table;
	unsigned workers;		 /* alive */
	struct fsvc_job *queue, *queue_last; /* waiting for a worker */
	struct fsvc_job *jobs;		 /* every job, for files_service_free() */
};

int files_service_register(struct agent *a, struct files_service *s);
/* Once the loop has ended: frees the jobs left (their workers die with
 * maitred: PR_SET_PDEATHSIG). */
void files_service_free(struct files_service *s);
