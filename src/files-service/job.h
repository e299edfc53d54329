/* One Files call on maitred's side: its worker process, and the relay
 * between the worker's socket and the call (service.h). */
#pragma once

#include "rpc/server-session.h"
#include "service.h"

enum fsvc_method {
	FSVC_STAT,
	FSVC_LIST,
	FSVC_MKDIR,
	FSVC_REMOVE,
	FSVC_MOVE,
	FSVC_READ,
	FSVC_READ_TREE,
	FSVC_WRITE,
	FSVC_WRITE_TREE,
};

/* Takes the call: starts its worker with a copy of request (for Write and
 * WriteTree, the header), or queues it until a worker ends. Failures are
 * answered on the call. */
void fsvc_job_submit(struct files_service *s, struct rpc_call *call, enum fsvc_method m,
		     const ProtobufCMessage *request);
/* Starts waiting jobs while there is room for their workers. */
void fsvc_job_start_queued(struct files_service *s);
void fsvc_job_free_all(struct files_service *s);
